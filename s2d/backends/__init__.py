"""Generation backends. Both give `generate(prompts, Sampling, seed, prefill) -> [Completion]` and count tokens
with the model's own tokenizer: `hf` (transformers, CPU or one GPU) and `vllm` (vLLM on GPUs or CPUs, in its own
process). `use_weights(checkpoint, kind)` switches a vLLM engine to a trained model without restarting it."""
from __future__ import annotations

from s2d.errors import check_choice

BACKENDS = ("hf", "vllm")


def make_generator(backend_cfg, base_path: str, checkpoint: str | None = None, kind: str = "base",
                   trust_remote_code: bool = False):
    """A generator serving the base model, or a trained one: `kind` lora (`checkpoint` = adapter folder, served
    unmerged by HF, merged into the engine by vLLM) or full (`checkpoint` = model folder)."""
    check_choice("backend", backend_cfg.name, BACKENDS)
    if backend_cfg.name == "vllm":
        from s2d.backends.vllm_backend import VLLMGenerator
        gen = VLLMGenerator(base_path, backend_cfg, trust_remote_code)   # always the base; trained weights swap in
        gen.use_weights(checkpoint, kind)
        return gen
    from s2d.backends.hf import HFGenerator
    return HFGenerator(checkpoint if kind == "full" else base_path, dtype=backend_cfg.dtype,
                       batch_size=int(backend_cfg.batch_size), adapter_path=checkpoint if kind == "lora" else None,
                       trust_remote_code=trust_remote_code, num_threads=backend_cfg.get("num_threads"))
