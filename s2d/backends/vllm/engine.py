"""vLLM's engine and request arguments from the backend config (`conf/backend/vllm.yaml`), and its outputs back
as Completions. Sampling is reproducible: every sampled request carries its own seed (`request_seeds`), so a record
depends on its prompt and seed only, not on which other requests share its batch, and a resumed run regenerates
exactly the records it lost. On CPU this needs chunked prefill off: vLLM rewinds a per-request CPU generator after
a partial prefill, which CPU generators do not support (`CPU Generator does not use offset`)."""
from __future__ import annotations

from s2d.backends.base import Completion, Sampling, resolve_dtype


def on_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def request_seeds(seed: int, n: int) -> list[int]:
    """One seed per request of a call, fixed by the call's seed and the request's position in it."""
    return [(int(seed) * 1_000_003 + i) % (2**63 - 1) for i in range(n)]


def sampling_kwargs(sampling: Sampling, stop_ids: list[int], seed: int | None = None) -> dict:
    """SamplingParams arguments for one request: greedy (no seed needed) when temperature is 0."""
    kwargs = {"max_tokens": int(sampling.max_new_tokens), "stop_token_ids": list(stop_ids)}
    if sampling.greedy:
        kwargs.update(temperature=0.0, top_p=1.0)
    else:
        kwargs.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p), seed=int(seed))
    return kwargs


def completions_from_outputs(outputs, stop_ids: list[int]) -> list[Completion]:
    """(text, token ids) per request -> Completions; tokens = generated ids before the first end-of-turn id."""
    out = []
    stops = set(stop_ids)
    for text, ids in outputs:
        n = next((i for i, t in enumerate(ids) if t in stops), len(ids))
        out.append(Completion(text.strip(), n))
    return out



CPU_BLOCK_SIZE = 32   # the smallest block vLLM's CPU attention takes (a multiple of 32)


def kv_block_size(value, cuda: bool) -> int | None:
    """`backend.block_size` -> vLLM's `block_size` (None: vLLM's own). `auto` is 32 on CPUs, where vLLM's 128 is
    longer than most prompts, so prefix caching (whole blocks only) never shared a prompt's prefill between its
    samples: SmolLM2 sampled went 175 -> 204 tok/s eager, 184 -> 262 compiled (AMD EPYC, benchmarks/bench.py)."""
    if value in (None, "auto"):
        return None if cuda else CPU_BLOCK_SIZE
    multiple = CPU_BLOCK_SIZE if not cuda else 16
    if not str(value).isdigit() or int(value) == 0 or int(value) % multiple:
        from s2d.errors import UserError
        raise UserError(f"backend.block_size={value}: use auto or a positive multiple of {multiple} "
                        f"(vLLM's {'GPU' if cuda else 'CPU'} attention)")
    return int(value)


def engine_kwargs(cfg, model_path: str, trust_remote_code: bool, cuda: bool) -> dict:
    """`vllm.LLM(...)` arguments from the backend config (`conf/backend/vllm.yaml`)."""
    kwargs = {"model": model_path, "tokenizer": model_path, "dtype": resolve_dtype(str(cfg.dtype)),
              "trust_remote_code": bool(trust_remote_code), "seed": 0,
              "enforce_eager": bool(cfg.enforce_eager), "enable_prefix_caching": True}
    if cfg.get("max_model_len"):
        kwargs["max_model_len"] = int(cfg.max_model_len)
    block = kv_block_size(cfg.get("block_size"), cuda)
    if block:
        kwargs["block_size"] = block
    if cuda:
        kwargs.update(gpu_memory_utilization=float(cfg.gpu_memory_utilization),
                      tensor_parallel_size=int(cfg.tensor_parallel_size))
    else:
        # Per-request seeds on CPU need whole prefills (see the module docstring), so the token budget of one
        # step must hold the longest prompt.
        kwargs.update(enable_chunked_prefill=False,
                      max_num_batched_tokens=max(int(cfg.get("max_model_len") or 0), 8192))
    if cfg.get("lora_mode") == "request":
        kwargs.update(enable_lora=True, max_lora_rank=int(cfg.max_lora_rank))
    return kwargs
