"""Stage 1, generate: run the System 2 technique over the unlabeled training pool, N samples per input.

    s2d technique=rar_2step filter=majority data.train_size=128     # runs every stage; this is the first

Phases: key -> cached? -> compute -> write -> return. Generations are appended item by item, so a killed run
resumes where it stopped; the key holds everything the outputs depend on (model, technique prompts, task data,
sampling, seed), never the training or filter choice, so sweeps over those reuse one generation.
"""
from __future__ import annotations

from s2d.cache import plain
from s2d.generation import run_technique_cached
from s2d.registry import build


def key_payload(ctx) -> dict:
    return {"model": ctx.model_identity, "task": plain(ctx.cfg.task), "technique": plain(ctx.cfg.technique),
            "seed": int(ctx.cfg.seed), "split": "train", **data_seed(ctx.cfg)}


def data_seed(cfg) -> dict:
    """The data seed in a key only where it differs from the run seed, so keys made before it existed still hold."""
    return {} if int(cfg.data.seed) == int(cfg.seed) else {"data_seed": int(cfg.data.seed)}


def run(ctx) -> dict:
    technique = build("technique", ctx.cfg.technique, task=ctx.task)
    filt = build("filter", ctx.cfg.filter)
    result = run_technique_cached(ctx, "train", technique, ctx.train_items, filt.samples_per_input,
                                  filt.temperature, filt.top_p, key_payload(ctx))
    return {"records": result.records, "key": result.key, "path": str(result.path),
            "cached": result.generated == 0,
            "stage_info": {"generated": result.generated, "from_cache": result.cached, "key": result.key}}
