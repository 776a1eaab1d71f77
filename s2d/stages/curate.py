"""Stage 2, curate: keep the final answers that pass the unsupervised consistency filter; drop the reasoning.

    s2d filter=majority filter.min_share=0.5      # or filter=none, or filter=gold (labelled ablation)

Phases: key -> cached? -> compute -> write -> return. Output: the distillation set, input -> final answer only,
as JSON under the cache (key = generation key + filter config) and in the run folder as `distill_set.jsonl`, TRL's
prompt-completion rows (s2d/export.py: `datasets` loads it and `trl.SFTTrainer` trains on it as it is).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from s2d import keys
from s2d.cache import cached_json, keyed
from s2d.errors import UserError, check_choice, check_target_template
from s2d.export import DISTILL_FILE, write_distill_set
from s2d.filters.base import Pool
from s2d.outputs import Curated
from s2d.registry import build, registered_all
from s2d.votes import ranked_votes


def check(cfg) -> None:
    """The target templates' fields, and each ablation filter (registered, runnable with the run filter's config)."""
    target = keys.target(cfg)
    for what, template in (("task.target_template", cfg.task.get("target_template")),
                           ("target.template", target["template"])):
        if template:
            check_target_template(what, str(template))
    for name in ablation_names(cfg):   # fail before generation, not after it, on a bad ablation
        check_choice("ablation filter (ablations)", name, registered_all("filter"))
        check_ablation(cfg.filter, name)


def run(ctx) -> Curated:
    out = curate_cached(ctx, ctx.cfg.filter, DISTILL_FILE, ctx.filter)
    # Ablations: the same System 2 generations curated by other filters (e.g. none, gold), each trained and
    # evaluated as its own distilled row, so one run shows what the consistency check buys.
    out.ablations = {name: curate_cached(ctx, ablation_filter_cfg(ctx.cfg.filter, name),
                                         f"distill_set.{name}.jsonl") for name in ablation_names(ctx.cfg)}
    out.cached = out.cached and all(a.cached for a in out.ablations.values())
    return out


def ablation_names(cfg) -> list[str]:
    """The `ablations` filter names: more filters over the same generations, each trained and evaluated."""
    return [str(n) for n in cfg.get("ablations") or []]


def check_ablation(filter_cfg, name: str) -> None:
    """Before any model loads: an ablation reuses the run filter's config with another filter's rule
    (`ablation_filter_cfg`), so that filter may need no key of its own the run filter lacks (`ablations: [usc]`
    under `filter=majority` has no USC template); one line naming the missing keys and the ablations that work."""
    missing = _own_keys(name) - set(filter_cfg.keys())
    if missing:
        usable = sorted(f for f in _filter_options() if not _own_keys(f) - set(filter_cfg.keys()))
        raise UserError(f"ablation filter '{name}' (ablations) needs its own keys {', '.join(sorted(missing))}, which "
                        f"filter={filter_cfg.name} does not have (an ablation reuses the run filter's config and "
                        f"samples); valid ablations under filter={filter_cfg.name}: {', '.join(usable)}; or run "
                        f"filter={name} itself")
    build("filter", ablation_filter_cfg(filter_cfg, name))   # its own checks, on the config it will run with


def _filter_options() -> list[str]:
    return sorted(p.stem for p in FILTER_CONF.glob("*.yaml"))


def _own_keys(name: str) -> set[str]:
    """The keys a filter's YAML sets beyond what every filter has (impl, name, its sampling)."""
    path = FILTER_CONF / f"{name}.yaml"
    if not path.exists():   # a registered filter without a YAML of its own: nothing to compare
        return set()
    return set(OmegaConf.load(path).keys()) - {"impl", "name", "samples_per_input", "temperature", "top_p"}


FILTER_CONF = Path(__file__).resolve().parents[2] / "conf" / "filter"


def ablation_filter_cfg(filter_cfg, name: str):
    """The run's filter config with another filter's logic: same N samples and sampling, so it reads the same
    generations (filter=none then keeps each input's first sample; gold keeps inputs with a correct sample)."""
    return OmegaConf.merge(filter_cfg, {"impl": name, "name": name})


def curate_cached(ctx, filter_cfg, run_file: str, filt=None) -> Curated:
    filt = filt or build("filter", filter_cfg)
    key = keyed(ctx.cache_dir, keys.distill_set(ctx.cfg, ctx.generated.key, filter_cfg, ctx.task, filt,
                                                ctx.train_items))
    path = Path(ctx.cache_dir) / "distill_sets" / f"{key}.json"
    pool = Pool(ctx.generated.records, ctx.generated.key, ctx.generated.payload, ctx.technique)
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
