"""Stage 2, curate: keep the final answers that pass the unsupervised consistency filter; drop the reasoning.

    s2d filter=majority filter.min_share=0.5      # or filter=none, or filter=gold (labelled ablation)

Phases: key -> cached? -> compute -> write -> return. Output: the distillation set, input -> final answer only,
as JSON under the cache (key = generation key + filter config) and in the run folder as `distill_set.jsonl`, TRL's
prompt-completion rows (s2d/export.py: `datasets` loads it and `trl.SFTTrainer` trains on it as it is).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from s2d import keys, schema
from s2d.cache import cached_json, keyed
from s2d.config_tree import CONF_DIR
from s2d.errors import UserError, check_choice, check_target_template
from s2d.export import DISTILL_FILE, write_distill_set
from s2d.filters.base import Pool
from s2d.outputs import Curated
from s2d.registry import build, registered_all
from s2d.votes import ranked_votes


def check(cfg) -> None:
    """The target templates' fields, and each ablation filter: registered, its composed config (`ablation_filter_cfg`)
    against the filter schema and the filter's own checks."""
    target = keys.target(cfg)
    for what, template in (("task.target_template", cfg.task.get("target_template")),
                           ("target.template", target["template"])):
        if template:
            check_target_template(what, str(template))
    names = ablation_names(cfg)
    task = build("task", cfg.task) if names else None
    for name in names:   # fail before generation, not after it, on a bad ablation
        check_choice("ablation filter (ablations)", name, registered_all("filter"))
        ablation = ablation_filter_cfg(cfg.filter, name)
        schema.check_group(f"ablations: [{name}]: filter.", "filter", ablation)
        try:
            build("filter", ablation).check_task(task)
        except UserError as e:
            raise UserError(f"ablations: [{name}]: {e}") from None


def run(ctx) -> Curated:
    out = curate_cached(ctx, ctx.cfg.filter, DISTILL_FILE, ctx.filter)
    # Ablations: the same System 2 generations curated by other filters (e.g. none, gold), each trained and
    # evaluated as its own distilled row, so one run shows what the consistency check buys.
    out.ablations = {}
    for name in ablation_names(ctx.cfg):
        ablation = ablation_filter_cfg(ctx.cfg.filter, name)
        out.ablations[name] = curate_cached(ctx, ablation, f"distill_set.{name}.jsonl",
                                            key_filter=keys.ablation_filter(ctx.cfg.filter, ablation))
    out.cached = out.cached and all(a.cached for a in out.ablations.values())
    return out


def ablation_names(cfg) -> list[str]:
    """The `ablations` filter names: more filters over the same generations, each trained and evaluated."""
    return [str(n) for n in cfg.get("ablations") or []]


SAMPLING = ("samples_per_input", "temperature", "top_p")


def ablation_filter_cfg(filter_cfg, name: str):
    """An ablation filter composed as the filter option it is (conf/filter/<name>.yaml) with the run filter's
    sampling, so that it reads the same generations: filter=none keeps each input's first sample, gold the inputs
    with a correct one, usc composes from the same N samples. A registered filter without a YAML of its own runs
    on the run filter's config with its rule."""
    path = CONF_DIR / "filter" / f"{name}.yaml"
    if not path.exists():
        return OmegaConf.merge(filter_cfg, {"impl": name, "name": name})
    return OmegaConf.merge(OmegaConf.load(path), {k: filter_cfg[k] for k in SAMPLING})


def curate_cached(ctx, filter_cfg, run_file: str, filt=None, key_filter=None) -> Curated:
    """`key_filter`: the filter as the set's key names it, where that is not `filter_cfg` (an ablation's)."""
    filt = filt or build("filter", filter_cfg)
    key = keyed(ctx.cache_dir, keys.distill_set(ctx.cfg, ctx.generated.key, key_filter or filter_cfg, ctx.task, filt,
                                                ctx.train_items))
    path = Path(ctx.cache_dir) / "distill_sets" / f"{key}.json"
    pool = Pool(ctx.generated.records, ctx.generated.key, ctx.pool_payload, ctx.technique)
    data, cached = cached_json(path, lambda: curate(ctx.task, filt, ctx.train_items, pool, ctx.service,
                                                    **keys.target(ctx.cfg)))
    # The diagnostics read the generations, not the set: recomputed, so sets cached before them carry them too.
    data = {**data, "stats": {**data["stats"], **diagnostics(ctx.task, ctx.train_items, ctx.generated.records,
                                                             filt.samples_per_input, data["examples"])}}
    write_distill_set(ctx.run_dir / run_file, data["examples"])   # TRL's prompt-completion rows (s2d/export.py)
    s = data["stats"]
    print(f"[s2d] curation ({filt.name}{', USES GOLD LABELS' if filt.uses_labels else ''}): kept "
          f"{s['kept']}/{s['inputs']} inputs; mean vote margin {s['vote_margin']:.2f}, answer entropy "
          f"{s['answer_entropy_bits']:.2f} bits", flush=True)
    return Curated(examples=data["examples"], stats=data["stats"], key=key, path=str(path), cached=cached,
                   info={"key": key})


def diagnostics(task, items, records, samples: int, examples: list[dict]) -> dict:
    """Where a filter is the bottleneck, label-free: over every input's first `samples` System 2 answers, the mean
    vote margin (share of the most common parsed answer minus the runner-up's; 1 = unanimous, 0 = a tie or nothing
    parsed) and the mean entropy of the answers in bits (an unparsed output counts as an answer of its own); and,
    for analysis only (gold labels), the kept targets' precision with its 95% Wilson interval."""
    from collections import Counter

    from scipy.stats import entropy

    from s2d.stats import accuracy_interval
    margins, entropies = [], []
    for item in items:
        answers = [task.extract(r["output"]) for r in records[item.id][:samples]]
        parsed = [n for _, n in ranked_votes(answers)] + [0, 0]
        margins.append((parsed[0] - parsed[1]) / len(answers))   # unparsed outputs agree with nothing
        every = Counter("\0unparsed" if a is None else a for a in answers).values()
        entropies.append(float(entropy(list(every), base=2)))
    right = sum(1 for e in examples if e.get("target_correct"))
    n = len(items)
    return {"vote_margin": sum(margins) / n if n else 0.0, "answer_entropy_bits": sum(entropies) / n if n else 0.0,
            "target_accuracy_ci95": accuracy_interval(right, len(examples))}




def curate(task, filt, items, pool: Pool, service=None, template: str | None = None, pick: str = "first") -> dict:
    """The distillation set: for each input the filter keeps, System 1's prompt -> the target (`template`, else the
    task's `target_template`, over the kept answer and a System 2 output that gave it: the filter's, or with
    `pick="shortest"` the shortest output whose answer agrees)."""
    examples, correct = [], 0
    decisions = filt.choose(service, task, items, pool)
    for item in items:
        if decisions[item.id] is None:
            continue
        answer, output = decisions[item.id]
        outputs = [r["output"] for r in pool.records[item.id]]
        votes = [task.extract(o) for o in outputs]
        if pick == "shortest":
            agreeing = [o for o, v in zip(outputs, votes) if v == answer]
            output = min(agreeing, key=lambda o: len(o.strip()), default=output)
        is_correct = task.is_correct(answer, item)   # analysis only: the filter never saw this (unless gold)
        correct += is_correct
        examples.append({"id": item.id, "prompt": task.system1_prompt(item),
                         "target": task.target(answer, output, template), "answer": answer, "votes": votes,
                         "target_correct": is_correct})
    n = len(items)
    stats = {"inputs": n, "samples_per_input": filt.samples_per_input, "kept": len(examples),
             "kept_fraction": len(examples) / n if n else 0.0,
             "target_accuracy": correct / len(examples) if examples else None,
             "filter": filt.name, "uses_gold_labels": filt.uses_labels}
    return {"stats": stats, "examples": examples}
