"""Multi-task distillation (`tasks: [...]`, `run_multitask`).

Each entry is the run's config with its own task, technique and filter: composed by Hydra as
`s2d task=.. technique=.. filter=..` plus the run's other overrides, then the entry's `overrides` (keys under
task., technique., filter. only: model, data and training are the run's).
Each entry runs generate -> curate -> train -> evaluate exactly as that single run would (same caches: its
per-task model is the single run's). The curated sets are then mixed (`mix`: weight w puts floor(w) copies of a
task's set in the mix plus a seeded sample of the fraction w - floor(w) of it; 0 keeps a task out of training, so
it measures pure transfer), one joint model is trained on the mix (same training config and seed), scored on
every task's test split (row `joint`) and on the broad benchmarks (base vs joint).
"""
from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

from s2d.errors import UserError, check_choice, check_positive
from s2d.export import DISTILL_FILE, write_distill_set
from s2d.loops.common import LoopRun, check
from s2d.results import comparisons, correctness
from s2d.stats import accuracy_interval, paired

ENTRY_KEYS = ("name", "task", "technique", "filter", "weight", "overrides")

ENTRY_GROUPS = ("task", "technique", "filter")

LOOP_KEYS = ("tasks", "rounds")


def task_entries(tasks, groups: dict[str, list[str]]) -> list[dict]:
    """The `tasks` list as checked plain dicts: known keys, known group options, distinct names, weights >= 0."""
    from s2d.cache import plain
    out = []
    for i, entry in enumerate(plain(tasks) or []):
        if not isinstance(entry, dict):
            raise UserError(f"tasks[{i}] = {entry!r}: each entry is a mapping, e.g. "
                            "{task: addition, technique: cot, filter: majority, weight: 1.0}")
        for key in entry:
            check_choice(f"key in tasks[{i}]", key, ENTRY_KEYS)
        for group in ENTRY_GROUPS:
            if group not in entry:
                raise UserError(f"tasks[{i}] needs a {group}; valid choices: {', '.join(groups[group])}")
            check_choice(f"{group} (tasks[{i}].{group})", str(entry[group]), groups[group])
        weight = entry.get("weight", 1.0)
        check_positive(f"tasks[{i}].weight", weight, allow_zero=True)
        overrides = [str(o) for o in entry.get("overrides") or []]
        for o in overrides:
            key = override_key(o)
            if not key.startswith(tuple(f"{g}." for g in ENTRY_GROUPS)):
                raise UserError(f"tasks[{i}].overrides: '{o}' sets '{key}'; an entry sets keys under task., "
                                "technique. or filter. only (model, data and training are the run's)")
        out.append({"name": str(entry.get("name") or entry["task"]), **{g: str(entry[g]) for g in ENTRY_GROUPS},
                    "weight": float(weight), "overrides": overrides})
    names = [e["name"] for e in out]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"tasks: two entries are named '{name}'; give one of them a `name`")
    if out and not any(e["weight"] > 0 for e in out):
        raise UserError("tasks: every weight is 0; the joint model would have nothing to train on")
    return out


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def entry_overrides(run_overrides: list[str], entry: dict) -> list[str]:
    """The Hydra overrides of an entry's config: the run's own (less its task/technique/filter choices and the loop
    keys), the entry's choices, no `tasks`, then the entry's own overrides."""
    keep = [o for o in run_overrides if override_key(o) not in ENTRY_GROUPS + LOOP_KEYS]
    return keep + [f"{g}={entry[g]}" for g in ENTRY_GROUPS] + ["tasks=[]"] + entry["overrides"]


def compose_entry(overrides: list[str]):
    """An entry's config, composed by Hydra (inside the running app, or on its own in checks and tests)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from s2d.config_tree import CONF_DIR
    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name="config", overrides=overrides)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    except Exception as e:   # Hydra's composition errors span lines: keep the first
        raise UserError(f"tasks entry ({' '.join(overrides[-4:])}): {(str(e).strip().splitlines() or [''])[0]}") \
            from None


def check_entries(argv: list[str]) -> None:
    """Before any model loads (cli.main): the `tasks` entries (from the command line or an experiment file) and
    each entry's own config through the command line's checks (group options, unknown keys)."""
    from hydra import compose, initialize_config_dir

    from s2d.config_tree import (
        CONF_DIR,
        check_config_keys,
        check_group_overrides,
        config_groups,
        parse_overrides,
    )
    args = [f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override()
            else o.input_line for o in parse_overrides(argv)]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=args)
    except Exception:   # not ours to report: Hydra says it as it always does when the app starts
        return
    check(cfg)
    if not cfg.get("tasks"):
        return
    run_args = [a for a in argv if "=" in a and not a.startswith("-")]
    for entry in task_entries(cfg.tasks, config_groups()):
        entry_args = entry_overrides(run_args, entry)
        try:
            check_group_overrides(entry_args)
            check_config_keys(entry_args)
        except UserError as e:
            raise UserError(f"tasks entry '{entry['name']}': {e}") from None


def mix(sets: dict[str, list[dict]], weights: dict[str, float], seed: int) -> list[dict]:
    """The joint distillation set: weight w puts floor(w) copies of a task's curated set in the mix, plus a sample
    (seeded by `seed` and the task) of round((w - floor(w)) * its size) of its examples; the mix is then shuffled
    with `seed`. Each example carries its task's name under `task`."""
    out = []
    for name, examples in sets.items():
        w = float(weights[name])
        whole = math.floor(w)
        tagged = [{**e, "task": name} for e in examples]
        out += tagged * whole + random.Random(f"mix-{seed}-{name}").sample(tagged, round((w - whole) * len(tagged)))
    random.Random(f"mix-{seed}").shuffle(out)
    return out


def pooled(rows: list[dict]) -> dict:
    """One results row over several tasks' test items: accuracy, tokens and calls per input averaged with each
    task's n as weight (the mean over all items), counts summed."""
    n = sum(int(r["n"]) for r in rows)
    out = {"n": n, "unparsed": sum(int(r["unparsed"]) for r in rows), "tasks": len(rows)}
    for key in ("accuracy", "tokens_per_input", "calls_per_input", "unparsed_rate"):
        if all(r.get(key) is not None for r in rows):
            out[key] = sum(float(r[key]) * int(r["n"]) for r in rows) / n if n else 0.0
    if "accuracy" in out:   # the pooled count of right answers: each task's accuracy x n is a whole number
        out["ci95"] = accuracy_interval(round(out["accuracy"] * n), n)
    return out


def pooled_curation(stats: list[dict]) -> dict:
    """One curation block over several tasks' sets (target accuracy over every kept input that has one)."""
    inputs, kept = sum(s["inputs"] for s in stats), sum(s["kept"] for s in stats)
    scored = [s for s in stats if s.get("target_accuracy") is not None]
    counted = sum(s["kept"] for s in scored)
    samples = sorted({s["samples_per_input"] for s in stats})
    return {"inputs": inputs, "samples_per_input": samples[0] if len(samples) == 1 else "+".join(map(str, samples)),
            "kept": kept, "kept_fraction": kept / inputs if inputs else 0.0,
            "target_accuracy": sum(s["target_accuracy"] * s["kept"] for s in scored) / counted if counted else None,
            "filter": "+".join(s["filter"] for s in stats),
            "uses_gold_labels": any(s.get("uses_gold_labels") for s in stats)}


def run_multitask(cfg, run_dir: Path, overrides: list[str], started, t0: float,
                  log=lambda prefix="": None) -> LoopRun:
    from s2d import keys
    from s2d.cache import keyed
    from s2d.config_tree import config_groups
    from s2d.outputs import BroadScores
    from s2d.pipeline import STAGES, Engine, prepare, run_stages
    from s2d.results import blocks, run_block
    from s2d.stages import broad
    from s2d.stages.train import train_cached

    entries = task_entries(cfg.tasks, config_groups())
    engine = Engine()   # one base model: one generation engine serves every task
    contexts = {}
    for entry in entries:   # every entry composed and built before any model work: a bad one fails first
        contexts[entry["name"]] = ctx = prepare(compose_entry(entry_overrides(overrides, entry)),
                                                run_dir / "tasks" / entry["name"], engine=engine)
        ctx.log = log(f"{entry['name']}/")
    first = next(iter(contexts.values()))
    try:
        for name, ctx in contexts.items():
            print(f"[s2d] ===== task {name} ({ctx.cfg.technique.name}, filter {ctx.cfg.filter.name}) =====", flush=True)
            run_stages(ctx, STAGES[:-1])
            ctx.broad = BroadScores(broad={}, cached=True, info={"skipped": "multi-task: the joint model is scored"})
        # The joint model: the curated sets mixed by weight, trained once with the run's training config and seed.
        joint = dataclasses.replace(first, run_dir=run_dir / "joint", stages={}, trained=None, evaluated=None,
                                    broad=None, log=log("joint/"))
        weights = {e["name"]: e["weight"] for e in entries}
        start = time.perf_counter()
        mixed = mix({n: c.curated.examples for n, c in contexts.items()}, weights, int(cfg.seed))
        mix_key = keyed(first.cache_dir, keys.mix(int(cfg.seed), {n: [c.curated.key, weights[n]]
                                                                  for n, c in contexts.items()}))
        counts = {n: sum(e["task"] == n for e in mixed) for n in contexts}
        write_distill_set(joint.run_dir / DISTILL_FILE, mixed)   # the mix's counts: results.json's `joint`
        joint.trained = train_cached(joint, mixed, mix_key, "checkpoint")
        joint.stages["train"] = {"cached": joint.trained.cached, "wall_s": round(time.perf_counter() - start, 2),
                                 **joint.trained.info}
        stage_logged(joint, "train")
        joint_rows, joint_samples = {}, {}
        for name, ctx in contexts.items():
            start = time.perf_counter()
            joint_rows[name], joint_samples[name], cached = joint_row(ctx, joint.trained)
            joint.stages[f"evaluate/{name}"] = {"cached": cached, "wall_s": round(time.perf_counter() - start, 2)}
            stage_logged(joint, f"evaluate/{name}")
        start = time.perf_counter()
        joint.broad = broad.run(joint)
        joint.stages["broad"] = {"cached": joint.broad.cached, "wall_s": round(time.perf_counter() - start, 2),
                                 **joint.broad.info}
        stage_logged(joint, "broad")
    finally:
        first.release_generator()
    task_samples = {n: {**c.evaluated.samples, "joint": joint_samples[n]} for n, c in contexts.items()}
    results = assemble_multitask(entries, {n: blocks(c) for n, c in contexts.items()}, joint_rows, counts,
                                 joint.broad.broad, joint.stages, task_samples)
    results["joint"].update(key=mix_key, checkpoint=joint.trained.key)
    run = run_block(cfg, run_dir, started, time.perf_counter() - t0)
    run.update({g: "+".join(e[g] for e in entries) for g in ENTRY_GROUPS}, tasks=[e["name"] for e in entries])
    samples = {row: v for row, v in pooled_samples(task_samples).items() if row != "distilled_per_task"}
    return LoopRun({"run": run, **results}, samples, mixed, str(run_dir / "joint" / DISTILL_FILE),
                   joint.trained.path)


def stage_logged(ctx, name: str) -> None:
    """A stage run outside pipeline.run_stages (the joint model's) logged as it ends, as run_stages logs its own."""
    if ctx.log is not None:
        ctx.log.stage_done(name, ctx.stages[name])


def joint_row(ctx, trained) -> tuple[dict, list, bool]:
    """The joint model's System 1 row on one task's test split, through the evaluate stage's own scoring."""
    from s2d.stages.evaluate import Row, RowPlan, score_rows
    from s2d.techniques.chain import system1_technique
    if trained.path is None:   # nothing kept in any task: the joint model is the base model
        return ({**ctx.evaluated.rows["system1"], "note": "no training examples kept; joint = base model"},
                ctx.evaluated.samples["system1"], True)
    technique = system1_technique(ctx.cfg.task, int(ctx.cfg.eval.max_new_tokens))
    plan = RowPlan(Row("joint"), technique, trained.key, lambda: ctx.generator(trained.path))
    rows, samples, cached = score_rows(ctx, [plan])
    return rows["joint"], samples["joint"], cached


def pooled_samples(task_samples: dict[str, dict[str, list[dict]]]) -> dict[str, list[dict]]:
    """Every task's evaluation samples under one row name each, item ids prefixed by the task (`<task>/<id>`):
    `distilled` is the joint model, `distilled_per_task` each task's own model."""
    renamed = {"system1": "system1", "system2": "system2", "joint": "distilled", "distilled": "distilled_per_task"}
    return {out: [{**s, "id": f"{n}/{s['id']}"} for n, rows in task_samples.items() for s in rows[row]]
            for row, out in renamed.items()}


def assemble_multitask(entries: list[dict], task_blocks: dict[str, dict], joint_rows: dict[str, dict],
                       counts: dict[str, int], broad_block: dict, joint_stages: dict,
                       task_samples: dict[str, dict[str, list[dict]]] | None = None) -> dict:
    """The blocks of a multi-task run. Per task (`tasks.<name>`): its System 1 / System 2 / own distilled rows, the
    joint model's row on its test split and `joint_minus_distilled` (> 0 transfer, < 0 interference). Top level:
    every row pooled over all tasks' test items (`pooled`), `distilled` being the joint model (the run's one
    distilled model) and `distilled_per_task` the per-task models; curation pooled; `broad` base vs joint.
    With `task_samples` (per task, each row's evaluation samples, the joint model's as `joint`): per task the own
    block's `comparisons` plus `joint - distilled` and `joint - system1`, and the pooled rows' `comparisons`
    (`distilled - distilled_per_task` is joint - own over every item), each paired on the same test items."""
    tasks = {}
    for e in entries:
        b = task_blocks[e["name"]]
        compared = dict(b.get("comparisons") or {})
        if task_samples:
            rows = {row: correctness(v) for row, v in task_samples[e["name"]].items()}
            compared.update({f"joint - {row}": paired(rows[row], rows["joint"]) for row in ("distilled", "system1")})
        tasks[e["name"]] = {"task": e["task"], "technique": e["technique"], "filter": e["filter"],
                            "weight": e["weight"], "mixed_examples": counts[e["name"]],
                            "system1": b["system1"], "system2": b["system2"], "distilled": b["distilled"],
                            "joint": joint_rows[e["name"]],
                            "joint_minus_distilled": joint_rows[e["name"]]["accuracy"] - b["distilled"]["accuracy"],
                            "curation": b["curation"], "ablations": b["ablations"], "variants": b["variants"],
                            "comparisons": compared, "stages": b["stages"]}
    names = [e["name"] for e in entries]
    stages = {f"{n}/{stage}": s for n in names for stage, s in tasks[n]["stages"].items()}
    stages.update({f"joint/{stage}": s for stage, s in joint_stages.items()})
    return {"system1": pooled([tasks[n]["system1"] for n in names]),
            "system2": pooled([tasks[n]["system2"] for n in names]),
            "distilled": pooled([joint_rows[n] for n in names]),
            "distilled_per_task": pooled([tasks[n]["distilled"] for n in names]),
            "variants": {}, "curation": pooled_curation([tasks[n]["curation"] for n in names]), "ablations": {},
            "comparisons": comparisons(pooled_samples(task_samples)) if task_samples else {},
            "broad": broad_block, "stages": stages, "tasks": tasks,
            "joint": {"examples": sum(counts.values()), "per_task": counts,
                      "weights": {e["name"]: e["weight"] for e in entries}}}
