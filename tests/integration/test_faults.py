"""Faults a run must survive without a traceback or lost work (issue 13)."""
from tests.integration.conftest import tiny_args


def test_unreachable_wandb_server_falls_back_to_offline_and_the_run_completes(s2d, s2d_env):
    """A key but no network: the server address is a loopback port where nothing listens (no outside traffic)."""
    s2d_env.pop("WANDB_MODE", None)
    s2d_env.update(WANDB_API_KEY="0123456789abcdef0123456789abcdef01234567", WANDB_BASE_URL="http://127.0.0.1:9")
    proc, results, run_dir = s2d(*tiny_args("system1", "none"), "backend=hf", "logger.init_timeout=5")
    assert "[s2d] W&B: cannot reach http://127.0.0.1:9 within 5s" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert results["run"]["wandb"]["mode"] == "offline"
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_training_killed_midway_resumes_from_its_last_checkpoint(s2d, s2d_env, cache_dir, tmp_path):
    """SIGKILL to the whole run (s2d and its training process) once a checkpoint exists; the rerun starts from it
    and ends with as many steps as an uninterrupted run."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [*tiny_args("system1", "none"), "backend=hf", "training.max_steps=8", "training.save_steps=2",
            "training.batch_size=1", "logger=none"]
    proc = subprocess.Popen([sys.executable, "-m", "s2d", *args], cwd=tmp_path, env=s2d_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    checkpoints = []
    while time.time() < deadline and proc.poll() is None and not checkpoints:
        checkpoints = [p for p in cache_dir.glob("checkpoints/.*.staging/trainer/checkpoint-*")
                       if (p / "trainer_state.json").exists()]
        time.sleep(0.5)
    assert checkpoints and proc.poll() is None, "no checkpoint was written before the run ended"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun, results, run_dir = s2d(*args)
    assert "[s2d] training resumes from " in rerun.stdout
    trained = json.loads((run_dir / "checkpoint" / "s2d_train.json").read_text())
    assert trained["resumed_from_step"] >= 2 and trained["steps"] == 8
    assert not list(cache_dir.glob("checkpoints/.*.staging"))   # the staging folder is gone, the checkpoint atomic
