"""vLLM generation for GPUs, with the same interface as `HFGenerator` (`backend=vllm`, extra `s2d[vllm]`).

vLLM runs in its own process (spawned on first use, stopped by `close()`), so that when the pipeline releases the
generator before training, the GPU memory it held is free for the trainer. Token counts come from the output
token ids (end-of-turn excluded), as in the HF backend. A LoRA adapter is served with vLLM's LoRA support, unmerged.
Samples of one input are independent requests (vLLM's prefix cache shares their prompt), because multi-step
techniques chain each sample through its own later steps.
"""
from __future__ import annotations

import multiprocessing as mp
from types import SimpleNamespace

from s2d.backends.hf import Completion, Sampling


def sampling_kwargs(sampling: Sampling, seed: int, stop_ids: list[int]) -> dict:
    """SamplingParams arguments for one call: greedy when temperature is 0."""
    kwargs = {"max_tokens": int(sampling.max_new_tokens), "stop_token_ids": list(stop_ids), "seed": int(seed)}
    if sampling.greedy:
        kwargs.update(temperature=0.0, top_p=1.0)
    else:
        kwargs.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p))
    return kwargs


def completions_from_outputs(outputs, stop_ids: list[int]) -> list[Completion]:
    """vLLM RequestOutputs -> Completions; tokens = generated ids before the first end-of-turn id."""
    out = []
    stops = set(stop_ids)
    for request in outputs:
        first = request.outputs[0]
        ids = list(first.token_ids)
        n = next((i for i, t in enumerate(ids) if t in stops), len(ids))
        out.append(Completion(first.text.strip(), n))
    return out


def _worker(conn, model_path, engine_kwargs, adapter_path):
    from vllm import LLM, SamplingParams
    llm = LLM(model=model_path, enable_lora=bool(adapter_path), **engine_kwargs)
    lora = None
    if adapter_path:
        from vllm.lora.request import LoRARequest
        lora = LoRARequest("distilled", 1, adapter_path)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        prompts, kwargs, stop_ids = msg
        outputs = llm.generate(prompts, SamplingParams(**kwargs), lora_request=lora, use_tqdm=True)
        conn.send([SimpleNamespace(outputs=[SimpleNamespace(text=o.outputs[0].text,
                                                            token_ids=list(o.outputs[0].token_ids))])
                   for o in outputs])


class VLLMGenerator:
    def __init__(self, model_path: str, dtype: str = "auto", batch_size: int = 256, adapter_path: str | None = None,
                 trust_remote_code: bool = False, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, **_):
        from transformers import AutoTokenizer

        from s2d.backends.hf import END_OF_TURN_TOKENS
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        vocab = self.tokenizer.get_vocab()
        self.stop_ids = sorted({self.tokenizer.eos_token_id, *(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)}
                               - {None})
        engine = {"dtype": "bfloat16" if dtype == "auto" else dtype, "trust_remote_code": trust_remote_code,
                  "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            engine["max_model_len"] = int(max_model_len)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child, model_path, engine, adapter_path), daemon=True)
        self._proc.start()
        if self._conn.recv() != "ready":
            raise RuntimeError("the vLLM worker failed to start")

    def chat_prompt(self, user: str, prefill: str = "") -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True) + prefill

    def generate(self, prompts, sampling: Sampling, seed: int = 0, prefill: str = "", desc: str = "generate",
                 progress: bool = True) -> list[Completion]:
        texts = [self.chat_prompt(p, prefill) for p in prompts]
        self._conn.send((texts, sampling_kwargs(sampling, seed, self.stop_ids), self.stop_ids))
        outputs = self._conn.recv()
        return completions_from_outputs(outputs, self.stop_ids)

    def close(self) -> None:
        if self._proc.is_alive():
            self._conn.send(None)
            self._proc.join(timeout=60)
        if self._proc.is_alive():
            self._proc.kill()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
