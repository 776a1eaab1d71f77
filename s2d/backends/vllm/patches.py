"""The CPU build's patches, applied inside the worker process only (never in the process that trains):
top-p through `nucleus_logits` instead of a full-vocabulary sort, and a no-op `finalize_loading` hook so that
vLLM's saved torch.compile artefact loads on CPUs."""
from __future__ import annotations


def nucleus_logits(logits, p, first_width: int = 64):
    """Top-p (nucleus) filtering without sorting the vocabulary: what vLLM's `apply_top_k_top_p_pytorch` computes
    for top-p alone (keep a token iff the probability mass ranked above it is < p), from `topk` over a width that
    grows until every row's nucleus fits (a token at the boundary may differ by float rounding of the cumulative
    sums, which vLLM adds up from the other end). On CPUs the full sort was 35% of a sampled decoding step
    (SmolLM2, 49k vocabulary; py-spy); a nucleus at p=0.95 usually holds a few dozen tokens."""
    import torch
    everything = p >= 1                              # p = 1 filters nothing
    if bool(everything.all()):
        return logits
    probs = logits.softmax(dim=-1, dtype=torch.float32)
    vocab, width = logits.shape[-1], min(first_width, logits.shape[-1])
    while True:
        top, idx = probs.topk(width, dim=-1)        # descending
        if width == vocab or bool(((top.sum(dim=-1) >= p) | everything).all()):
            break                                    # a token outside the top `width` has >= p ranked above it
        width = min(width * 4, vocab)
    keep = (top.cumsum(dim=-1) - top) < p.unsqueeze(1)
    keep[:, 0] = True                                # at least one token, as vLLM does
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(1, idx, torch.where(keep, logits.gather(1, idx), out.gather(1, idx)))
    out[everything] = logits[everything]
    return out


def patch_cpu_top_p() -> None:
    """Route vLLM's CPU top-p (no top-k) through `nucleus_logits`; top-k and GPU paths are untouched."""
    from vllm.v1.sample.ops import topk_topp_sampler as sampler
    original = sampler.apply_top_k_top_p_pytorch

    def apply_top_k_top_p_pytorch(logits, k, p, allow_cpu_sync=False):
        if p is None or k is not None:
            return original(logits, k, p, allow_cpu_sync)
        return nucleus_logits(logits, p)
    sampler.apply_top_k_top_p_pytorch = apply_top_k_top_p_pytorch


def patch_cpu_aot_load() -> None:
    """Let vLLM's saved torch.compile artefact load on CPUs. There vLLM compiles with the plain "inductor" backend,
    whose artefact torch wraps in `BundledAOTAutogradSerializableCallable`; vLLM's loader then calls
    `finalize_loading`, a hook only its own `VllmSerializableFunction` has, the call fails, and every engine start
    compiles again (1.5-2 minutes). The inductor artefact needs no finalising: a no-op hook lets it load."""
    try:
        from torch._dynamo.aot_compile_types import BundledAOTAutogradSerializableCallable as Bundled
    except ImportError:   # another torch: nothing to patch
        return
    if not hasattr(Bundled, "finalize_loading"):
        Bundled.finalize_loading = lambda self, *args, **kwargs: None
