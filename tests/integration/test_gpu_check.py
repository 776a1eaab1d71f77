"""benchmarks/gpu_check.py is run on GPUs by hand; here its CPU path keeps it from rotting (CI has no GPU)."""
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_script_runs_every_check_on_cpu(tmp_path, cache_dir):
    out = tmp_path / "GPU_CHECK.md"
    proc = subprocess.run([PYTHON["fork"], str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--eager",
                           "--cache", str(cache_dir), "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = out.read_text()
    for check in ("generation, backend=hf", "generation, backend=vllm", "training step, lora",
                  "training step, full", "broad stage (lm-eval, LoRA)"):
        assert f"| {check} | ok |" in table
