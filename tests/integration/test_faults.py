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
