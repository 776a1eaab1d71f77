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


def lm_eval_model(model_type: str, model_path: str, adapter: str | None, dtype: str, batch_size: int,
                  trust_remote_code: bool, seed: int, devices: dict):
    """lm-eval's model for `benchmarks.model_type` (hf or vllm) over the base model or a trained one
    (s2d/backends/lm_eval_models.py); `devices`: lm-eval's own multi-device options."""
    from s2d.backends.lm_eval_models import make_lm, make_vllm_lm
    if model_type == "vllm":
        return make_vllm_lm(model_path, adapter, dtype, trust_remote_code, seed, devices)
    return make_lm(model_path, adapter, dtype, batch_size, trust_remote_code, devices)
