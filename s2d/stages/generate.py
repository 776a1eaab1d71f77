"""Stage 1, generate: run the System 2 technique over the unlabeled training pool, N samples per input.

    s2d technique=rar_2step filter=majority data.train_size=128     # runs every stage; this is the first

Phases: key -> cached? -> compute -> write -> return. Generations are appended item by item, so a killed run
resumes where it stopped; the key holds everything the outputs depend on (model, technique prompts, task data,
sampling, seed: `keys.pool`), never the training or filter choice, so sweeps over those reuse one
generation.
"""
from __future__ import annotations

from s2d.errors import check_positive
from s2d.outputs import Generated


def check(cfg) -> None:
    check_positive("data.train_size", cfg.data.train_size)
    check_positive("data.test_size", cfg.data.test_size)
    check_positive("backend.batch_size", cfg.backend.batch_size)


def run(ctx) -> Generated:
    filt = ctx.filter
    result = ctx.service.run("train", ctx.technique, ctx.train_items, filt.samples_per_input, filt.temperature,
                             filt.top_p, ctx.pool_payload)
    return Generated(records=result.records, key=result.key, path=str(result.path), cached=result.generated == 0,
                     info={"generated": result.generated, "from_cache": result.cached, "key": result.key})
