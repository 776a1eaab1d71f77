"""Where vLLM's engines run: on a CPU, the cores and environment of each engine (thread binding, KV cache space,
huge pages), and for `backend.replicas` data-parallel copies, each replica's share of the cores or GPUs."""
from __future__ import annotations

import os

from s2d.backends.base import huge_pages_tunables


def cpu_binding(cores: set[int] | None = None) -> str:
    """The cores this process may run on, as VLLM_CPU_OMP_THREADS_BIND wants them ("0-1", "0,2,5")."""
    cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
    runs, start = [], cores[0]
    for prev, cur in zip(cores, cores[1:] + [None]):
        if cur != prev + 1:
            runs.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
    return ",".join(runs)


def parse_binding(binding: str) -> set[int]:
    """"0-1,4" -> {0, 1, 4}: the inverse of `cpu_binding`."""
    cores: set[int] = set()
    for part in binding.split(","):
        first, _, last = part.partition("-")
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def pin_to_binding() -> None:
    """Keep this worker on the cores `VLLM_CPU_OMP_THREADS_BIND` names. vLLM applies that variable only in its own
    multi-process executor, not in the in-process engine s2d runs, so without this a replica's share of the cores
    (and `backend.cpu_threads_bind`) would be a thread count only. The process is confined, its threads are not
    pinned one per core: pinning them (OMP_PROC_BIND=close, OMP_PLACES=cores) made SmolLM2 greedy 186 -> 103 tok/s
    on the 2-core AMD EPYC."""
    binding = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
    if binding and binding not in ("auto", "nobind") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, parse_binding(binding))


def cpu_env(cfg, cores: set[int] | None = None) -> dict[str, str]:
    """Environment for vLLM's CPU backend on `cores` (default: every core this process may use). The engine core and
    its executor run inside our worker (one process, so that `patch_cpu_top_p` reaches the sampler), where vLLM
    would cut torch to 1 thread unless OMP_NUM_THREADS says otherwise; its own multi-process default also keeps one
    core back for the front end (measured 283 vs 443 tok/s on 2 cores). Its malloc backs large blocks
    with transparent huge pages (`huge_pages_tunables`): SmolLM2 on the AMD EPYC went 153 -> 196 tok/s greedy and
    143 -> 168 sampled (`benchmarks/bench.py --one vllm smollm2_135m`, with and without)."""
    cores = set(cores if cores is not None else os.sched_getaffinity(0))
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_CPU_OMP_THREADS_BIND": str(cfg.get("cpu_threads_bind") or cpu_binding(cores)),
            "OMP_NUM_THREADS": str(len(cores)),
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
            "VLLM_CPU_KVCACHE_SPACE": str(int(cfg.get("cpu_kvcache_gb") or 2)),
            "GLIBC_TUNABLES": huge_pages_tunables(os.environ)}


def split_evenly(items: list, parts: int) -> list[list]:
    """Contiguous shards whose sizes differ by at most one, in order (empty shards for short lists)."""
    size, extra = divmod(len(items), parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + size + (i < extra))
    return [items[bounds[i]:bounds[i + 1]] for i in range(parts)]


def replica_devices(replicas: int, tensor_parallel: int, cuda: bool,
                    cpu_bind: str | None = None) -> list[dict[str, str]]:
    """Per data-parallel replica, the environment that gives it its own devices: `tensor_parallel` GPUs each
    (CUDA_VISIBLE_DEVICES), or an equal share of this process's CPU cores (VLLM_CPU_OMP_THREADS_BIND)."""
    if cuda:
        import torch
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        if len(gpus) < replicas * tensor_parallel:
            from s2d.errors import UserError
            raise UserError(f"backend.replicas={replicas} x backend.tensor_parallel_size={tensor_parallel} needs "
                            f"{replicas * tensor_parallel} GPUs; {len(gpus)} visible")
        return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[r * tensor_parallel:(r + 1) * tensor_parallel])}
                for r in range(replicas)]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < replicas:
        from s2d.errors import UserError
        raise UserError(f"backend.replicas={replicas} needs at least {replicas} CPU cores; {len(cores)} available")
    if cpu_bind and replicas == 1:   # the user's own binding, already in cpu_env's environment
        return [{}]
    return [{"VLLM_CPU_OMP_THREADS_BIND": cpu_binding(set(group)), "OMP_NUM_THREADS": str(len(group))}
            for group in split_evenly(cores, replicas)]
