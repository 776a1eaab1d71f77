"""Batched generation with Hugging Face transformers (left padding, chat template, token counting): the reference
backend (`backend=hf`)."""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from s2d.backends.base import Completion, Sampling, chat_prompt, is_out_of_memory, resolve_dtype, stop_token_ids
from s2d.registry import register

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFGenerator:
    """A causal LM (optionally with a LoRA adapter, not merged) that completes chat prompts in batches."""

    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 32,
                 num_threads: int | None = None, adapter_path: str | None = None,
                 trust_remote_code: bool = False, device: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"   # decoder-only batching: pad on the left so generation continues text
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=DTYPES[resolve_dtype(dtype)], trust_remote_code=trust_remote_code, use_safetensors=True,
        ).to(self.device)
        if adapter_path:
            from peft import PeftModel
            self.model = PeftModel.from_pretrained(self.model, adapter_path)   # evaluated unmerged
        self.model.eval()
        self.stop_ids = self._stop_ids()

    def _stop_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        return stop_token_ids(self.tokenizer, eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def chat_prompt(self, user: str, prefill: str = "") -> str:
        return chat_prompt(self.tokenizer, user, prefill)

    def _count(self, ids: torch.Tensor) -> int:
        stops = torch.isin(ids, torch.tensor(self.stop_ids, device=ids.device)).nonzero()
        return int(stops[0, 0]) if len(stops) else int(ids.shape[0])

    @torch.inference_mode()
    def generate(self, prompts: list[str], sampling: Sampling, seed: int = 0, prefill: str = "",
                 desc: str = "generate", progress: bool = True) -> list[Completion]:
        """Complete each user message in `prompts` (chat template applied); batches of `batch_size`."""
        out: list[Completion] = []
        bar = tqdm(total=len(prompts), desc=desc, unit="seq", disable=not progress, leave=False)
        tokens, start, b = 0, time.perf_counter(), 0
        while b < len(prompts):
            batch = [self.chat_prompt(p, prefill) for p in prompts[b:b + self.batch_size]]
            try:
                done = self._generate_batch(batch, sampling, seed + b)
            except RuntimeError as e:   # torch.OutOfMemoryError is one
                if not is_out_of_memory(e) or self.batch_size == 1:
                    raise
                self.batch_size //= 2
                print(f"[s2d] out of memory generating {len(batch)} sequences at once; retrying at "
                      f"backend.batch_size={self.batch_size}", flush=True)
                if self.device == "cuda":
                    torch.cuda.empty_cache()
                continue
            out += done
            tokens += sum(c.tokens for c in done)
            b += len(batch)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}")
        bar.close()
        return out

    def _generate_batch(self, batch: list[str], sampling: Sampling, seed: int) -> list[Completion]:
        enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, eos_token_id=self.stop_ids,
                      pad_token_id=self.tokenizer.pad_token_id)
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            torch.manual_seed(seed)
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        gen = self.model.generate(**enc, **kwargs)[:, enc["input_ids"].shape[1]:]
        completions = []
        for row in gen:
            n = self._count(row)
            completions.append(Completion(self.tokenizer.decode(row[:n], skip_special_tokens=True).strip(), n))
        return completions


@register("backend", "hf")
def hf_backend(cfg, base_path: str, checkpoint: str | None = None, kind: str = "base",
               trust_remote_code: bool = False) -> HFGenerator:
    """One model per checkpoint: the base, a LoRA adapter served unmerged, or a full fine-tune's folder."""
    return HFGenerator(checkpoint if kind == "full" else base_path, dtype=cfg.dtype, batch_size=int(cfg.batch_size),
                       adapter_path=checkpoint if kind == "lora" else None, trust_remote_code=trust_remote_code,
                       num_threads=cfg.get("num_threads"))
