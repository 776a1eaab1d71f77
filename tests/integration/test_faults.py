"""Faults a run must survive without a traceback or lost work."""
import pytest

from tests.helpers.wandb_log import offline_summary
from tests.integration.conftest import PYTHON, tiny_args

pytestmark = pytest.mark.integration


def test_unreachable_wandb_server_falls_back_to_offline_and_the_run_completes(s2d, s2d_env):
    """A key but no network: the server address is a loopback port where nothing listens (no outside traffic)."""
    s2d_env.pop("WANDB_MODE", None)
    s2d_env.update(WANDB_API_KEY="0123456789abcdef0123456789abcdef01234567", WANDB_BASE_URL="http://127.0.0.1:9")
    proc, results, run_dir = s2d(*tiny_args("system1", "none"), "backend=hf", "logger.init_timeout=5")
    assert "[s2d] W&B: cannot reach http://127.0.0.1:9 within 5s" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert results["run"]["wandb"]["mode"] == "offline"
    summary = offline_summary(run_dir)   # the offline run holds the results, ready for `wandb sync`
    for block in ("system1", "system2", "distilled"):
        assert summary[f"{block}/accuracy"] == results[block]["accuracy"], block


@pytest.mark.parametrize("training,steps", [("full", 6)])   # LoRA: the two-process test below
def test_training_killed_midway_resumes_from_its_last_checkpoint(s2d, s2d_env, cache_dir, tmp_path, training, steps):
    """SIGKILL to the whole run (s2d and its training process) once a checkpoint exists; the rerun starts from it
    and ends with as many steps as an uninterrupted run (LoRA: adapter + optimizer; full: every weight)."""
    import json
    import os
    import signal
    import subprocess

    args = [*tiny_args("system1", "none"), "backend=hf", f"training={training}", f"training.max_steps={steps}",
            "training.save_steps=2", "training.batch_size=1", "logger=none"]
    # The fork server's child dies with its client's process group (tests/helpers/forkserver.py `_watch`).
    proc = subprocess.Popen([PYTHON["fork"], "-m", "s2d", *args], cwd=tmp_path, env=s2d_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_a_checkpoint(cache_dir, proc, "no checkpoint was written before the run ended")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun, results, run_dir = s2d(*args)
    assert "[s2d] training resumes from " in rerun.stdout
    trained = json.loads((run_dir / "checkpoint" / "s2d_train.json").read_text())
    assert trained["resumed_from_step"] >= 2 and trained["steps"] == steps
    weights = "model.safetensors" if training == "full" else "adapter_model.safetensors"
    assert (run_dir / "checkpoint" / weights).exists()
    assert not list(cache_dir.glob("checkpoints/.*.staging"))   # the staging folder is gone, the checkpoint atomic


def test_two_process_training_loads_after_the_process_group_and_resumes_after_its_launcher_is_killed(
        s2d, s2d_env, cache_dir, tmp_path, lora_run):
    """`training.num_processes=2`: `accelerate launch` starts two DDP workers (gloo over the CPU cores). Each loads
    the model only once its process group exists; SIGKILL to the launcher takes its workers with it (no orphan
    trains on), and the rerun resumes from the last checkpoint, written by the main process in the format of a
    one-process run."""
    import json
    import signal
    import subprocess
    import sys

    import psutil

    steps = 8
    args = [*tiny_args("system1", "none"), "backend=hf", "training=lora", "training.num_processes=2",
            f"training.max_steps={steps}", "training.save_steps=2", "training.batch_size=1", "logger=none"]
    log = tmp_path / "killed-run.log"
    # A fresh `python` (not the fork server's, whose children are the server's): the real process tree, in which
    # the workers are the launcher's children, as test_resume.py's killed run does.
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "s2d", *args], cwd=tmp_path, env=s2d_env,
                                start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    _wait_for_a_checkpoint(cache_dir, proc, lambda: log.read_text()[-3000:])
    launcher, workers = _training_processes(cache_dir)
    assert len(launcher) == 1 and len(workers) == 2, (launcher, workers)
    launcher[0].send_signal(signal.SIGKILL)
    assert psutil.wait_procs(workers, timeout=30)[1] == [], "a worker outlived its killed launcher"
    assert proc.wait(timeout=300) != 0
    assert "the training process exited with signal SIGKILL; run the same command again to resume" in log.read_text()

    rerun, results, run_dir = s2d(*args)
    assert "[s2d] training resumes from " in rerun.stdout
    for rank in (0, 1):   # each worker's log: the process group first, then the model
        group = rerun.stdout.index(f"[s2d] training: process group gloo up, rank {rank} of 2; loading the model")
        assert rerun.stdout.index("[s2d] training: model loaded after the process group gloo up", group) > group
    checkpoint = run_dir / "checkpoint"
    trained = json.loads((checkpoint / "s2d_train.json").read_text())
    assert trained["resumed_from_step"] >= 2 and trained["steps"] == steps
    assert any("loss" in entry for entry in trained["log_history"]) and trained["train_loss"] > 0
    one_process = lora_run[1] / "checkpoint"
    assert sorted(p.name for p in checkpoint.iterdir()) == sorted(p.name for p in one_process.iterdir())
    assert json.loads((checkpoint / "adapter_config.json").read_text())["r"] == \
        json.loads((one_process / "adapter_config.json").read_text())["r"]


def _wait_for_a_checkpoint(cache_dir, proc, failure) -> None:
    """Until a killed-to-be run's training has written a complete checkpoint (its staging folder), while it runs."""
    import time
    deadline = time.time() + 900
    checkpoints = []
    while time.time() < deadline and proc.poll() is None and not checkpoints:
        checkpoints = [p for p in cache_dir.glob("checkpoints/.*.staging/trainer/checkpoint-*")
                       if (p / "trainer_state.json").exists()]
        time.sleep(0.5)
    assert checkpoints and proc.poll() is None, failure() if callable(failure) else failure


def _training_processes(cache_dir):
    """(accelerate launchers, training workers) of the run whose cache is `cache_dir` (its environment says so)."""
    import psutil
    launchers, workers = [], []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.environ().get("S2D_CACHE_DIR") != str(cache_dir):
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if "accelerate.commands.launch" in cmd:
            launchers.append(p)
        elif "s2d.training" in cmd:
            workers.append(p)
    return launchers, workers


def test_out_of_memory_in_generation_retries_at_half_the_batch(smollm2, capsys):
    """An injected OOM on any batch wider than 2: the HF backend halves its batch until it fits, says so once per
    halving, and returns the same greedy outputs as a run that never ran out of memory."""
    import torch

    from s2d.backends.base import Sampling
    from s2d.backends.hf import HFGenerator
    path = smollm2
    prompts = [f"Say the number {k}." for k in range(6)]
    reference = HFGenerator(path, batch_size=8).generate(prompts, Sampling(max_new_tokens=6), progress=False)
    gen = HFGenerator(path, batch_size=8)
    real = gen.model.generate

    def tight(**kw):
        if kw["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(**kw)
    gen.model.generate = tight
    assert gen.generate(prompts, Sampling(max_new_tokens=6), progress=False) == reference
    out = capsys.readouterr().out
    assert "retrying at backend.batch_size=4" in out and "retrying at backend.batch_size=2" in out
    assert gen.batch_size == 2


def test_out_of_memory_in_training_retries_at_half_the_batch(smollm2, tmp_path, monkeypatch, capsys):
    import json

    import torch
    import trl

    from s2d.training import train
    from tests.test_config import _compose

    real = trl.SFTTrainer.train

    def tight(self, *a, **kw):
        if self.args.per_device_train_batch_size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB (injected)")
        return real(self, *a, **kw)
    monkeypatch.setattr(trl.SFTTrainer, "train", tight)
    cfg = _compose(["training.batch_size=8", "training.max_steps=1", "training.save_steps=0"])
    from s2d.cache import plain
    examples = [{"prompt": f"What is {k} + 1?", "target": str(k + 1)} for k in range(8)]
    target = tmp_path / "ckpt"
    train({"model_path": smollm2, "trust_remote_code": False,
           "training": plain(cfg.training), "seed": 0, "examples": examples, "target": str(target)})
    out = capsys.readouterr().out
    assert "retrying at training.batch_size=4 x grad_accum=2" in out and "training.batch_size=2 x grad_accum=4" in out
    record = json.loads((target / "s2d_train.json").read_text())
    assert (record["batch_size"], record["grad_accum"], record["steps"]) == (2, 4, 1)
