"""The generator the pipeline uses (`backend=vllm`): `backend.replicas` engines in worker processes, with the HF
generator's interface; `use_weights` swaps a trained model into all of them."""
from __future__ import annotations

import time

from s2d.backends.base import Completion, Sampling, chat_prompt, stop_token_ids
from s2d.backends.vllm.cpu import cpu_env, replica_devices, split_evenly
from s2d.backends.vllm.engine import completions_from_outputs, engine_kwargs, on_cuda, request_seeds, sampling_kwargs
from s2d.backends.vllm.worker import Worker
from s2d.registry import register


class VLLMGenerator:
    """vLLM engines (`backend.replicas` data-parallel copies, each over `tensor_parallel_size` GPUs or a share of
    the CPU cores) completing chat prompts; `use_weights` swaps a trained model into all of them."""

    swaps_weights = True
    keeps_engine_for_training = property(lambda self: not self.cuda)

    def __init__(self, model_path: str, cfg, trust_remote_code: bool = False):
        from transformers import AutoTokenizer

        self.cuda = on_cuda()
        self.model_path = model_path
        self.max_model_len = int(cfg.max_model_len) if cfg.get("max_model_len") else None
        self.weights: tuple[str | None, str] = (None, "base")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.stop_ids = stop_token_ids(self.tokenizer)
        engine = engine_kwargs(cfg, model_path, trust_remote_code, self.cuda)
        common = {} if self.cuda else cpu_env(cfg)
        devices = replica_devices(int(cfg.get("replicas") or 1), int(cfg.tensor_parallel_size), self.cuda,
                                  cfg.get("cpu_threads_bind"))
        start = time.perf_counter()
        args = (engine, model_path, str(cfg.get("lora_mode") or "merge"))
        self._workers = [Worker({**common, **d}, args) for d in devices]   # they start side by side
        self._each(None, "the vLLM engine failed to start")
        self.startup_s = time.perf_counter() - start
        where = "cuda" if self.cuda else "cpu cores " + " | ".join(
            d.get("VLLM_CPU_OMP_THREADS_BIND", common["VLLM_CPU_OMP_THREADS_BIND"]) for d in devices)
        print(f"[s2d] vLLM engine ready in {self.startup_s:.0f}s ({engine['dtype']}, {len(devices)} replica(s), "
              f"{where})", flush=True)

    def _each(self, messages, what: str) -> list:
        """Send one message per worker (None: only receive), then collect every reply in order."""
        if messages is not None:
            for worker, msg in zip(self._workers, messages):
                worker.conn.send(msg)
        return [worker.receive(what) for worker in self._workers]

    def chat_prompt(self, user: str, prefill: str = "") -> str:
        return chat_prompt(self.tokenizer, user, prefill)

    def generate(self, prompts, sampling: Sampling, seed: int = 0, prefill: str = "", desc: str = "generate",
                 progress: bool = True) -> list[Completion]:
        # Token ids, not text: vLLM would add special tokens (a second BOS) to a text prompt; the HF backend
        # tokenizes the same way.
        token_ids = [self.tokenizer(self.chat_prompt(p, prefill), add_special_tokens=False)["input_ids"]
                     for p in prompts]
        params = [sampling_kwargs(sampling, self.stop_ids, s) for s in request_seeds(seed, len(prompts))]
        n = len(self._workers)   # seeds are fixed before sharding: replicas change nothing in the output
        shards = zip(split_evenly(token_ids, n), split_evenly(params, n))
        outputs = self._each([("generate", t, p, desc) for t, p in shards], f"vLLM generation ({desc})")
        return completions_from_outputs([o for shard in outputs for o in shard], self.stop_ids)

    def use_weights(self, checkpoint: str | None, kind: str = "base") -> None:
        """Serve the base model (`checkpoint=None`) or a trained one: `kind` lora (an adapter folder) or full."""
        if (checkpoint, kind) == self.weights:
            return
        start = time.perf_counter()
        self._each([("weights", checkpoint, kind)] * len(self._workers),
                   f"loading {kind} weights from {checkpoint or self.model_path}")
        self.weights = (checkpoint, kind)
        print(f"[s2d] vLLM now serves {kind} weights ({time.perf_counter() - start:.1f}s to swap)", flush=True)

    def close(self) -> None:
        for worker in getattr(self, "_workers", []):
            worker.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


@register("backend", "vllm")
def vllm_backend(cfg, base_path: str, checkpoint: str | None = None, kind: str = "base",
                 trust_remote_code: bool = False) -> VLLMGenerator:
    """The engine always loads the base model; a trained one is swapped in (LoRA merged, or a full fine-tune)."""
    gen = VLLMGenerator(base_path, cfg, trust_remote_code)
    gen.use_weights(checkpoint, kind)
    return gen
