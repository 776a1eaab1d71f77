from pathlib import Path

import pytest

from s2d.errors import UserError
from s2d.launch import accelerate_command, check_launch


def test_single_process_needs_no_launcher_and_multi_gpu_uses_accelerate(tmp_path):
    cmd = accelerate_command({"num_processes": 4, "accelerate_config": "fsdp"}, "/tmp/spec.json", "python")
    assert cmd[:5] == ["python", "-m", "accelerate.commands.launch", "--num_processes", "4"]
    config = Path(cmd[cmd.index("--config_file") + 1])
    assert config.name == "fsdp.yaml" and config.exists()
    assert cmd[-3:] == ["-m", "s2d.training", "/tmp/spec.json"]
    own = tmp_path / "my.yaml"
    assert str(own) in accelerate_command({"num_processes": 2, "accelerate_config": str(own)}, "s", "python")
    plain_ddp = accelerate_command({"num_processes": 2}, "s", "python", port=40123)
    # No config: torchrun's DDP (`--multi_gpu`; gloo on a machine without GPUs), never accelerate's one-process
    # fallback; a rendezvous port of its own so that two trainings on one node do not meet.
    assert "--config_file" not in plain_ddp and "--multi_gpu" in plain_ddp
    assert plain_ddp[plain_ddp.index("--main_process_port") + 1] == "40123"
    assert accelerate_command({"num_processes": 2}, "s", "python")[plain_ddp.index("--main_process_port") + 1] \
        != accelerate_command({"num_processes": 2}, "s", "python")[plain_ddp.index("--main_process_port") + 1]


@pytest.mark.parametrize("training,on_gpu,message", [
    ({"num_processes": 0}, False, "training.num_processes=0: must be >= 1"),
    ({"num_processes": 64}, True, "training.num_processes=64 is more than the "),
    ({"num_processes": 2, "accelerate_config": "fsdpp"}, False,
     "training.accelerate_config=fsdpp: no such file; use one of fsdp, deepspeed_zero3 or a path"),
    ({"num_processes": 1, "accelerate_config": "fsdp"}, False,
     "training.accelerate_config=fsdp (FSDP) needs training.num_processes > 1"),
    ({"num_processes": 2, "accelerate_config": "fsdp"}, False,
     "training.accelerate_config=fsdp (FSDP) needs GPUs: on CPU cores accelerate would train plain DDP"),
    ({"num_processes": 2, "accelerate_config": "deepspeed_zero3"}, False,
     "training.accelerate_config=deepspeed_zero3 (DEEPSPEED) needs GPUs"),
])
def test_a_launch_that_cannot_work_is_one_line_before_anything_runs(training, on_gpu, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_launch(training, on_gpu=on_gpu)


def test_more_cpu_processes_than_cores_run_with_a_warning(capsys):
    check_launch({"num_processes": 64}, on_gpu=False)
    assert "training.num_processes=64 CPU processes share" in capsys.readouterr().out


def test_training_process_backs_large_blocks_with_huge_pages_and_keeps_user_tunables():
    from s2d.launch import training_env
    assert training_env({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    env = training_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1" and env["PATH"] == "/bin"
    assert training_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


def test_training_dtype_auto_is_fp32_on_cpu_bf16_on_gpu_and_stays_out_of_the_checkpoint_key():
    from omegaconf import OmegaConf

    from s2d.keys import training_config as key_config
    from s2d.launch import training_dtype
    assert training_dtype("auto", on_gpu=False) == "float32" and training_dtype("auto", on_gpu=True) == "bfloat16"
    assert training_dtype("bfloat16", on_gpu=False) == "bfloat16"
    base = {"method": "lora", "epochs": 3, "save_steps": 200}
    # `auto` (and the key's absence, as before it existed) give the same key; an explicit dtype a new one.
    assert key_config(OmegaConf.create({**base, "dtype": "auto"})) == key_config(OmegaConf.create(base)) \
        == {"method": "lora", "epochs": 3}
    assert key_config(OmegaConf.create({**base, "dtype": "bfloat16"}))["dtype"] == "bfloat16"


def test_fsdp_casting_to_bf16_contradicts_an_fp32_training_dtype_on_gpus():
    from s2d.launch import check_accelerate_config
    with pytest.raises(UserError, match=r"training.dtype=float32 trains in float32, but training.accelerate_config="
                                        r"fsdp casts to bf16"):
        check_accelerate_config("fsdp", 8, "float32", "float32", on_gpu=True)
    check_accelerate_config("fsdp", 8, "bfloat16", "auto", on_gpu=True)   # auto on a GPU: bf16, as FSDP casts
