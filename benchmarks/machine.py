"""What the benchmarks share about this machine and its models: the CPU's name and flags, the dense matmul rate
(every engine's number is read against it) and where a model config's weights are (bench.py, training_bench.py)."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()



def cpu_flags() -> list[str]:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})



def models_dir() -> Path:
    from s2d.config_tree import default_cache_dir
    return Path(os.environ.get("S2D_MODELS_DIR") or Path(default_cache_dir()) / "models")



def model_path(model: str) -> str:
    from omegaconf import OmegaConf

    from s2d.models import resolve_model_path
    return resolve_model_path(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"), models_dir())



def matmul_gflops(dtype: str, size: int = 1024, seconds: float = 2.0) -> float:
    """Dense matmul rate, repeated for about `seconds` (bf16 without AVX512-BF16/AMX is ~100x slower than fp32)."""
    import torch
    a = torch.randn(size, size, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, dtype=getattr(torch, dtype))
    a @ b
    start, repeats = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        repeats += 1
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9
