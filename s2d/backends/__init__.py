"""Generation backends. Both give `generate(prompts, Sampling, seed, prefill) -> [Completion]` and count tokens
with the model's own tokenizer: `hf` (transformers, CPU or one GPU) and `vllm` (GPUs, its own process)."""
from __future__ import annotations

from s2d.errors import check_choice

BACKENDS = ("hf", "vllm")


def make_generator(backend_cfg, model_path: str, adapter_path: str | None = None, trust_remote_code: bool = False):
    check_choice("backend", backend_cfg.name, BACKENDS)
    common = dict(dtype=backend_cfg.dtype, batch_size=int(backend_cfg.batch_size), adapter_path=adapter_path,
                  trust_remote_code=trust_remote_code)
    if backend_cfg.name == "vllm":
        from s2d.backends.vllm_backend import VLLMGenerator
        return VLLMGenerator(model_path, gpu_memory_utilization=float(backend_cfg.gpu_memory_utilization),
                             max_model_len=backend_cfg.get("max_model_len"), **common)
    from s2d.backends.hf import HFGenerator
    return HFGenerator(model_path, num_threads=backend_cfg.get("num_threads"), **common)
