"""Stage 4, evaluate: System 1, System 2 and distilled System 1 on the held-out test split, greedy.

    s2d data.test_size=100 eval.max_new_tokens=48

Phases: key -> cached? -> compute -> write -> return. Each of the three rows is a cached generation of its own
(base System 1 and System 2 are shared by every run with the same model, task and technique). Tokens per input
are generated tokens summed over every call a technique makes (the paper's #Tokens).
"""
from __future__ import annotations

from s2d.cache import plain
from s2d.generation import run_technique_cached
from s2d.registry import build
from s2d.techniques.chain import system1_technique


def run(ctx) -> dict:
    task, items = ctx.task, ctx.test_items
    base = {"model": ctx.model_identity, "task": plain(ctx.cfg.task), "seed": int(ctx.cfg.seed), "split": "test"}
    system1 = system1_technique(ctx.cfg.task, int(ctx.cfg.eval.max_new_tokens))
    system2 = build("technique", ctx.cfg.technique, task=task)
    rows, cached = {}, True
    plans = [("system1", system1, {**base, "technique": plain(system1.cfg)}, None),
             ("system2", system2, {**base, "technique": plain(ctx.cfg.technique)}, None)]
    checkpoint = ctx.outputs["train"]["path"]
    if checkpoint:
        plans.append(("distilled", system1, {**base, "technique": plain(system1.cfg),
                                             "checkpoint": ctx.outputs["train"]["key"]},
                      lambda: _distilled_generator(ctx, checkpoint)))
    for row, technique, payload, factory in plans:
        result = run_technique_cached(ctx, f"eval-{row}", technique, items, 1, 0.0, 1.0, payload, factory)
        rows[row] = score(task, items, result.records)
        cached &= result.generated == 0
    if not checkpoint:   # nothing was kept to train on: the distilled model is the base model
        rows["distilled"] = {**rows["system1"], "note": "no training examples kept; distilled = base model"}
    return {"rows": {k: v["metrics"] for k, v in rows.items()},
            "samples": {k: v["samples"] for k, v in rows.items()}, "cached": cached}


def _distilled_generator(ctx, checkpoint: str):
    ctx.release_generator()
    if ctx.cfg.training.method == "lora":   # base weights + the adapter, not merged
        return ctx.make_generator(ctx.model_path, adapter_path=checkpoint)
    return ctx.make_generator(checkpoint)


def score(task, items, records) -> dict:
    """Exact match after normalisation, unparsed outputs counted, mean generated tokens per input."""
    samples, correct, unparsed, tokens, calls = [], 0, 0, 0, 0
    for item in items:
        trace = records[item.id][0]
        predicted = task.extract(trace["output"])
        ok = task.is_correct(predicted, item)
        correct += ok
        unparsed += predicted is None
        tokens += trace["tokens"]
        calls += len(trace["calls"])
        samples.append({"id": item.id, "question": item.question, "gold": task.normalize(item.answer),
                        "output": trace["output"], "predicted": predicted, "correct": ok,
                        "tokens": trace["tokens"], "trace": trace["calls"]})
    n = len(items)
    metrics = {"accuracy": correct / n, "tokens_per_input": tokens / n, "n": n, "unparsed": unparsed,
               "calls_per_input": calls / n}
    return {"metrics": metrics, "samples": samples}
