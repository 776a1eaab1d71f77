"""Generation backends, registered like tasks and filters (`conf/backend/<name>.yaml`, `impl: <name>`): `hf`
(transformers, the reference) and `vllm` (vLLM on GPUs or CPUs, in its own process). Each gives
`generate(prompts, Sampling, seed, prefill) -> [Completion]` (`s2d/backends/base.py`) and counts tokens with the
model's own tokenizer; `use_weights(checkpoint, kind)` switches a vLLM engine to a trained model in place."""
from __future__ import annotations

from s2d.registry import build


def make_generator(backend_cfg, base_path: str, checkpoint: str | None = None, kind: str = "base",
                   trust_remote_code: bool = False):
    """A generator serving the base model, or a trained one: `kind` lora (`checkpoint` = adapter folder) or full
    (`checkpoint` = model folder)."""
    return build("backend", backend_cfg, base_path=base_path, checkpoint=checkpoint, kind=kind,
                 trust_remote_code=trust_remote_code)


def in_process_vllm_env() -> dict[str, str]:
    """The environment a vLLM engine started in this process needs (lm-eval's own vLLM model in the broad stage):
    the CPU backend's settings (`vllm_backend.cpu_env`, on every core), nothing on a GPU. Stages ask here rather than
    reach into the vLLM backend's module."""
    from s2d.backends.vllm_backend import cpu_env, on_cuda
    return {} if on_cuda() else cpu_env({})
