"""Integration tests: the real embedded SmolLM2-135M-Instruct, the real pipeline, at tiny size.

The converted model and stage caches live in one cache dir per test session ($S2D_TEST_CACHE_DIR to reuse one
across sessions locally); each test gets its own working folder, so run folders never collide.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["data.train_size=4", "data.test_size=4", "eval.max_new_tokens=16", "training.max_steps=2",
        "backend.batch_size=8"]
STEP_TOKENS = {"system1": [24], "cot": [48], "rar_1step": [32], "rar_2step": [24, 24]}


def tiny_args(technique="rar_2step", filt="majority", samples=2, extra=()):
    args = [f"technique={technique}", f"filter={filt}", *TINY, *extra]
    args += [f"technique.steps.{i}.max_new_tokens={n}" for i, n in enumerate(STEP_TOKENS[technique])]
    if filt == "majority":
        args.append(f"filter.samples_per_input={samples}")
    return args


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """Converted models, shared by the session ($S2D_TEST_MODELS_DIR reuses a conversion across sessions)."""
    return Path(os.environ.get("S2D_TEST_MODELS_DIR") or tmp_path_factory.mktemp("s2d-models"))


@pytest.fixture
def cache_dir(tmp_path):
    """Stage caches: fresh per test, so each test sees its own generations."""
    return tmp_path / "cache"


@pytest.fixture
def s2d_env(cache_dir, models_dir):
    env = {**os.environ, "S2D_CACHE_DIR": str(cache_dir), "S2D_MODELS_DIR": str(models_dir),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    return env


@pytest.fixture
def s2d(s2d_env, tmp_path):
    """Run `python -m s2d ARGS` in a fresh folder; return (CompletedProcess, results dict or None, run dir)."""
    def run(*args, check=True, cwd=None):
        workdir = Path(cwd or tmp_path)
        before = set(workdir.glob("outputs/*/*"))
        proc = subprocess.run([sys.executable, "-m", "s2d", *args], capture_output=True, text=True, env=s2d_env,
                              cwd=workdir, timeout=1800)
        if check:
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        new = sorted(set(workdir.glob("outputs/*/*")) - before)
        run_dir = new[-1] if new else None
        results = json.loads((run_dir / "results.json").read_text()) if run_dir and (run_dir / "results.json").exists() else None
        return proc, results, run_dir
    return run
