"""Integration tests: the real embedded SmolLM2-135M-Instruct, the real pipeline, at tiny size.

What a session shares (with every pytest-xdist worker of it, under a lock), and why (a 2-core CPU runs CI):
- the converted models (`models_dir`; $S2D_TEST_MODELS_DIR reuses a conversion across sessions);
- the broad benchmarks' exported data (`broad_data`: ten benchmarks, ~45k rows, written once, not per test);
- one pipeline run that trained a LoRA adapter (`lora_run`), for the tests that only need *an* adapter;
- vLLM's compile cache (`VLLM_CACHE_ROOT`, a folder of this session's): every test engine runs eager
  (`backend.enforce_eager=true`, added by `engine_args`) except `test_vllm.py`'s one compiled test, which then
  starts on an empty cache whatever this machine compiled before;
- the imports (`forkserver`): s2d runs start from a fork server that imported vLLM, TRL, lm-eval and W&B once
  (tests/helpers/forkserver.py: a tiny run spends ~40 of its ~80 s importing in its three processes), except
  test_resume.py's killed run, which starts `python` itself (the real start path and process tree stay tested).
  S2D_TEST_FORKSERVER=0 starts `python` everywhere.
Stage caches stay per test (`cache_dir`): a test counts what it generated, so it must see its own generations.
Each test gets its own working folder, so run folders never collide.
"""
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s2d.cache import locked

TINY = ["data.train_size=4", "data.test_size=4", "eval.max_new_tokens=16", "training.max_steps=1",
        "backend.batch_size=8"]
STEP_TOKENS = {"system1": [24], "cot": [48], "rar_1step": [32], "rar_2step": [24, 24]}
EAGER = "backend.enforce_eager=true"


def tiny_args(technique="rar_2step", filt="majority", samples=2, extra=()):
    args = [f"technique={technique}", f"filter={filt}", *TINY, *extra]
    args += [f"technique.steps.{i}.max_new_tokens={n}" for i, n in enumerate(STEP_TOKENS[technique])]
    if filt == "majority":
        args.append(f"filter.samples_per_input={samples}")
    return args


def records(cache_dir: Path, label: str) -> list[dict]:
    """Every cached generation record under `generations/<label>-*` (the stage caches' own files)."""
    files = sorted(cache_dir.glob(f"generations/{glob.escape(label)}-*/records.jsonl"))
    assert files, f"no {label} generations under {cache_dir}"
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def engine_args(args) -> list[str]:
    """`args` with vLLM's engine made eager (no torch.compile: ~2-4 minutes per model folder a test sees first),
    unless the run is on the HF backend (which has no such key) or sets the key itself."""
    args = list(args)
    if "backend=hf" in args or any(a.startswith("backend.enforce_eager=") for a in args):
        return args
    return [*args, EAGER]


# The `python` the tests start s2d with: the session's fork server client once `forkserver` has started it.
PYTHON = {"fork": sys.executable}


def run_s2d(env: dict, cwd: Path, *args, check=True, multirun=False, timeout=1800, fork=True):
    """`python -m s2d [-m] ARGS` (test engines eager) in `cwd`; return (CompletedProcess, results or None, run dir).
    `fork=False`: a fresh interpreter rather than the fork server's child."""
    workdir = Path(cwd)
    before = set(workdir.glob("outputs/*/*"))
    python = PYTHON["fork"] if fork else sys.executable
    proc = subprocess.run([python, "-m", "s2d", *(["-m"] if multirun else []), *engine_args(args)],
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    new = sorted(set(workdir.glob("outputs/*/*")) - before)
    run_dir = new[-1] if new else None
    done = run_dir and (run_dir / "results.json").exists()
    results = json.loads((run_dir / "results.json").read_text()) if done else None
    return proc, results, run_dir


def base_env(cache_dir: Path, models_dir: Path) -> dict:
    env = {**os.environ, "S2D_CACHE_DIR": str(cache_dir), "S2D_MODELS_DIR": str(models_dir),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    return env


@pytest.fixture(autouse=True)
def restore_environ():
    """The process environment as it was before each test: libraries imported in the pytest process set variables
    there at import (trl: VLLM_LOGGING_LEVEL=ERROR; vLLM: TORCHINDUCTOR_*; the broad stage: vLLM's CPU settings),
    which would otherwise reach every later test's s2d runs."""
    saved = dict(os.environ)
    yield
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def forkserver(tmp_path_factory, vllm_cache_root):
    """tests/helpers/forkserver.py, started with the session's environment (VLLM_CACHE_ROOT included); its client
    stands in for `python` in `run_s2d`. One per pytest-xdist worker."""
    if os.environ.get("S2D_TEST_FORKSERVER", "1") == "0":
        yield None
        return
    folder = tmp_path_factory.mktemp("forkserver")
    sock, client = folder / "sock", folder / "python"
    # vLLM reads its log level once, at import, in the server: its default (INFO), not the ERROR that importing trl
    # at collection sets in this process (trl/_compat.py). The compiled-engine test reads vLLM's INFO lines.
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "INFO"}
    with open(folder / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "tests.helpers.forkserver", str(sock), str(client)],
                                  cwd=Path(__file__).resolve().parents[2], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 600
    while not sock.exists():
        assert server.poll() is None and time.time() < deadline, (folder / "server.log").read_text()[-3000:]
        time.sleep(0.2)
    PYTHON["fork"] = str(client)
    yield client
    PYTHON["fork"] = sys.executable
    server.terminate()
    server.wait(timeout=60)


@pytest.fixture(scope="session", autouse=True)
def vllm_cache_root(tmp_path_factory):
    """vLLM's compile cache for this session only (the user's ~/.cache/vllm is shared with every other checkout and
    run on the machine, so what a start found there depended on history)."""
    root = tmp_path_factory.mktemp("vllm-cache")
    old = os.environ.get("VLLM_CACHE_ROOT")
    os.environ["VLLM_CACHE_ROOT"] = str(root)
    yield root
    if old is None:
        os.environ.pop("VLLM_CACHE_ROOT", None)
    else:
        os.environ["VLLM_CACHE_ROOT"] = old


def session_root(tmp_path_factory) -> Path:
    """A folder shared by every worker of this test session (pytest-xdist gives each worker its own basetemp,
    `pytest-N/popen-gwK`; their parent is the session's), or this session's basetemp without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """Converted models, shared by the session's workers ($S2D_TEST_MODELS_DIR reuses a conversion across
    sessions). SmolLM2, which nearly every integration test runs, is converted here once, under a lock, so that
    two workers never convert it side by side."""
    from s2d.models import resolve_model_path
    from tests.test_config import _compose

    root = Path(os.environ.get("S2D_TEST_MODELS_DIR") or session_root(tmp_path_factory) / "s2d-models")
    with locked(root):   # s2d's own cross-process lock (fcntl), as parallel sweep jobs use it
        resolve_model_path(_compose([]).model, root)
    return root


@pytest.fixture(scope="session")
def smollm2(models_dir) -> str:
    """The embedded SmolLM2-135M-Instruct as an HF folder: its path."""
    from s2d.models import resolve_model_path
    from tests.test_config import _compose
    return resolve_model_path(_compose([]).model, models_dir)


@pytest.fixture(scope="session")
def broad_data(tmp_path_factory) -> Path:
    """The exported benchmark data every test's cache links to (s2d.broad_data writes each file once, atomically;
    shared by the session's workers)."""
    path = session_root(tmp_path_factory) / "broad-data"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def cache_dir(tmp_path, broad_data):
    """Stage caches: fresh per test, so each test sees its own generations; the benchmark export is the session's."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "broad_data").symlink_to(broad_data, target_is_directory=True)
    return cache


@pytest.fixture
def s2d_env(cache_dir, models_dir):
    return base_env(cache_dir, models_dir)


@pytest.fixture
def s2d(s2d_env, tmp_path):
    """Run `python -m s2d ARGS` in a fresh folder; return (CompletedProcess, results dict or None, run dir)."""
    def run(*args, check=True, cwd=None, fork=True):
        return run_s2d(s2d_env, cwd or tmp_path, *args, check=check, fork=fork)
    return run


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, models_dir, broad_data):
    """One tiny pipeline run that trained a LoRA adapter (System 1 targets, HF backend): (results, run dir). Shared
    by the tests (and workers) that need an adapter, not a particular one."""
    work = session_root(tmp_path_factory) / "lora-run"
    done = work / "run_dir.txt"
    with locked(work):
        if not done.exists():
            cache = work / "cache"
            cache.mkdir(parents=True)
            (cache / "broad_data").symlink_to(broad_data, target_is_directory=True)
            _, _, run_dir = run_s2d(base_env(cache, models_dir), work, *tiny_args("system1", "none"),
                                    "backend=hf", "logger=none")
            done.write_text(str(run_dir))
    run_dir = Path(done.read_text())
    return json.loads((run_dir / "results.json").read_text()), run_dir
