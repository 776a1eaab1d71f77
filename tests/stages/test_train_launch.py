from pathlib import Path

from s2d.stages.train import accelerate_command


def test_single_process_needs_no_launcher_and_multi_gpu_uses_accelerate(tmp_path):
    cmd = accelerate_command({"num_processes": 4, "accelerate_config": "fsdp"}, "/tmp/spec.json", "python")
    assert cmd[:5] == ["python", "-m", "accelerate.commands.launch", "--num_processes", "4"]
    config = Path(cmd[cmd.index("--config_file") + 1])
    assert config.name == "fsdp.yaml" and config.exists()
    assert cmd[-3:] == ["-m", "s2d.stages.train", "/tmp/spec.json"]
    own = tmp_path / "my.yaml"
    assert str(own) in accelerate_command({"num_processes": 2, "accelerate_config": str(own)}, "s", "python")
    assert "--config_file" not in accelerate_command({"num_processes": 2}, "s", "python")


def test_training_process_backs_large_blocks_with_huge_pages_and_keeps_user_tunables():
    from s2d.stages.train import training_env
    assert training_env({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    env = training_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1" and env["PATH"] == "/bin"
    assert training_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


def test_training_dtype_auto_is_fp32_on_cpu_bf16_on_gpu_and_stays_out_of_the_checkpoint_key():
    from omegaconf import OmegaConf

    from s2d.stages.train import key_config, training_dtype
    assert training_dtype("auto", on_gpu=False) == "float32" and training_dtype("auto", on_gpu=True) == "bfloat16"
    assert training_dtype("bfloat16", on_gpu=False) == "bfloat16"
    base = {"method": "lora", "epochs": 3, "save_steps": 200}
    # `auto` (and the key's absence, as before it existed) give the same key; an explicit dtype a new one.
    assert key_config(OmegaConf.create({**base, "dtype": "auto"})) == key_config(OmegaConf.create(base)) \
        == {"method": "lora", "epochs": 3}
    assert key_config(OmegaConf.create({**base, "dtype": "bfloat16"}))["dtype"] == "bfloat16"
