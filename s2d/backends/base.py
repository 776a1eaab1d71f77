"""What every generation backend shares, importable without torch (prompt-only code uses it): the sampling and
completion types, the end-of-turn tokens, the chat prompt, and dtype resolution.

A backend is a factory registered under its name (`conf/backend/<name>.yaml`, `impl: <name>`):
`factory(backend_cfg, base_path=..., checkpoint=..., kind=..., trust_remote_code=...) -> Generator`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


@dataclass
class Sampling:
    """How one call decodes. temperature 0 means greedy."""
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Completion:
    text: str
    tokens: int   # generated tokens, end-of-turn excluded, counted with the model's own tokenizer


class Generator(Protocol):
    """What techniques, filters and stages call. Backends that swap weights in place also have
    `use_weights(checkpoint, kind)` and `swaps_weights = True`; those holding a process have `close()`."""
    tokenizer: object

    def chat_prompt(self, user: str, prefill: str = "") -> str: ...

    def generate(self, prompts: list[str], sampling: Sampling, seed: int = 0, prefill: str = "",
                 desc: str = "generate", progress: bool = True) -> list[Completion]: ...


def chat_prompt(tokenizer, user: str, prefill: str = "") -> str:
    """One chat template everywhere: generation and evaluation feed the model this, and training (TRL) applies the
    same tokenizer template to the same user message."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True) + prefill


def stop_token_ids(tokenizer, extra=()) -> list[int]:
    """End-of-sequence and end-of-turn ids in this vocabulary (plus `extra`, e.g. the generation config's eos)."""
    vocab = tokenizer.get_vocab()
    return sorted({tokenizer.eos_token_id, *extra, *(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)} - {None})


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls beat fp32 on CPUs with AVX512-BF16 or AMX (measured ~2x); on AVX2-only CPUs they are slower."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> str:
    """`auto`: bf16 on a GPU or a CPU with fast bf16, else fp32 (measured on an AVX2 EPYC: bf16 40 vs fp32 58 tok/s)."""
    if dtype != "auto":
        return dtype
    import torch
    return "bfloat16" if torch.cuda.is_available() or cpu_has_fast_bf16() else "float32"


def is_out_of_memory(error: BaseException) -> bool:
    """An out-of-memory error of any device: torch's own type, or the messages accelerate's
    `find_executable_batch_size` recognises (CUDA, XPU, MPS, CPU allocator)."""
    import torch
    from accelerate.utils.memory import should_reduce_batch_size
    return isinstance(error, torch.OutOfMemoryError) or should_reduce_batch_size(error)


def huge_pages_tunables(environ) -> str:
    """GLIBC_TUNABLES for a child process whose malloc backs large blocks with transparent huge pages. Decoding
    and training allocate and free vocabulary-sized logits every step; glibc serves those through mmap and the
    kernel re-faults them 4 KiB at a time (measured on the AMD EPYC: 40% of a CPU LoRA step, 13% of vLLM
    decoding was kernel time). 2 MiB pages cut the faults ~25x. A tunable the user set is kept."""
    tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
    if not any(t.startswith("glibc.malloc.hugetlb=") for t in tunables):
        tunables.append("glibc.malloc.hugetlb=1")
    return ":".join(tunables)
