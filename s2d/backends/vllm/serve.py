"""The vLLM engine's own process: start the engine, then answer generate and weights messages on the socket the
parent passed until told to stop. Trained weights are swapped into the running engine with vLLM's in-place
`reload_weights`: a LoRA adapter is first merged into the base weights (once, in the model's dtype, into the
cache: `s2d.models.merged_path`), a full fine-tune is read from its folder.

    python -m s2d.backends.vllm.serve FD     # what `worker.Worker` starts; FD: the socket's descriptor
"""
from __future__ import annotations

import sys
from functools import partial
from multiprocessing.connection import Connection

from s2d.backends.vllm.cpu import pin_to_binding
from s2d.backends.vllm.engine import on_cuda
from s2d.backends.vllm.patches import patch_cpu_aot_load, patch_cpu_top_p
from s2d.models import merged_model, merged_path


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
        pin_to_binding()
        patch_cpu_top_p()
        patch_cpu_aot_load()
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


if __name__ == "__main__":   # a `Worker` child: serve on the socket whose descriptor the parent passed
    _conn = Connection(int(sys.argv[1]))
    _serve(_conn, *_conn.recv())
