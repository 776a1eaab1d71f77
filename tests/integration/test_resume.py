"""A run killed during generation resumes without regenerating the items it had finished (HF backend; the vLLM
backend's kill-and-resume is in test_vllm.py)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import tiny_args

pytestmark = pytest.mark.integration

N_TRAIN, SAMPLES = 6, 2


def test_killed_run_resumes_where_it_stopped(cache_dir, s2d_env, tmp_path, s2d):
    # batch 2 with 2 samples: one input per chunk, so records are appended input by input.
    args = tiny_args("rar_2step", "majority", samples=SAMPLES,
                     extra=["backend=hf", f"data.train_size={N_TRAIN}", "backend.batch_size=2", "seed=7",
                            "logger=none"])
    # A fresh `python` (not the fork server's): the real start path and process tree, killed by the kernel.
    proc = subprocess.Popen([sys.executable, "-m", "s2d", *args], cwd=tmp_path, env=s2d_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, records = time.time() + 900, []
    try:
        while time.time() < deadline:
            records = sorted((cache_dir / "generations").glob("train-*/records.jsonl"))
            records = [r for r in records if _lines(r) >= 2 * SAMPLES]
            if records:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(records) == 1, "no generation in progress to kill"
    path = records[0]
    done_before = {json.loads(line)["id"]: line for line in path.read_text().splitlines()
                   if line.endswith("}")}   # a torn last line is not a finished record
    assert 0 < len(done_before) < N_TRAIN * SAMPLES

    _, results, _ = s2d(*args)
    generated = results["stages"]["generate"]["generated"]
    assert generated == N_TRAIN * SAMPLES - len(done_before)     # model calls for the missing items only
    assert results["stages"]["generate"]["from_cache"] == len(done_before)
    after = {json.loads(line)["id"]: line for line in path.read_text().splitlines()}
    assert len(after) == N_TRAIN * SAMPLES
    assert all(after[k] == v for k, v in done_before.items())    # finished items untouched


def _lines(path):
    return sum(1 for line in path.read_text().splitlines() if line.endswith("}"))
