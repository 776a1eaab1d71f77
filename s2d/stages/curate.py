"""Stage 2, curate: keep the final answers that pass the unsupervised consistency filter; drop the reasoning.

    s2d filter=majority filter.min_share=0.5      # or filter=none, or filter=gold (labelled ablation)

Phases: key -> cached? -> compute -> write -> return. Output: the distillation set, input -> final answer only,
as JSON lines under the cache (key = generation key + filter config) and linked from the run folder.
"""
from __future__ import annotations

from pathlib import Path

from s2d.cache import atomic_write_json, cache_key, plain, read_json
from s2d.registry import build


def run(ctx) -> dict:
    filt = build("filter", ctx.cfg.filter)
    key = cache_key({"kind": "curate", "version": 1, "generations": ctx.outputs["generate"]["key"],
                     "filter": plain(ctx.cfg.filter), "task": plain(ctx.cfg.task),
                     "items": [i.id for i in ctx.train_items]})
    path = Path(ctx.cache_dir) / "distill_sets" / f"{key}.json"
    cached = path.exists()
    if cached:
        data = read_json(path)
    else:
        data = curate(ctx.task, filt, ctx.train_items, ctx.outputs["generate"]["records"])
        atomic_write_json(path, data)
    atomic_write_json(ctx.run_dir / "distill_set.json", data)
    print(f"[s2d] curation ({filt.name}{', USES GOLD LABELS' if filt.uses_labels else ''}): kept "
          f"{data['stats']['kept']}/{data['stats']['inputs']} inputs", flush=True)
    return {"examples": data["examples"], "stats": data["stats"], "key": key, "path": str(path), "cached": cached,
            "stage_info": {"key": key}}


def curate(task, filt, items, records) -> dict:
    examples, correct = [], 0
    for item in items:
        answers = [task.extract(r["output"]) for r in records[item.id]]
        chosen = filt.select(answers, task.normalize(item.answer))
        if chosen is None:
            continue
        is_correct = task.is_correct(chosen, item)   # analysis only: the filter never saw this (unless gold)
        correct += is_correct
        examples.append({"id": item.id, "prompt": task.system1_prompt(item), "target": task.target(chosen),
                         "answer": chosen, "votes": answers, "target_correct": is_correct})
    n = len(items)
    stats = {"inputs": n, "samples_per_input": filt.samples_per_input, "kept": len(examples),
             "kept_fraction": len(examples) / n if n else 0.0,
             "target_accuracy": correct / len(examples) if examples else None,
             "filter": filt.name, "uses_gold_labels": filt.uses_labels}
    return {"stats": stats, "examples": examples}
