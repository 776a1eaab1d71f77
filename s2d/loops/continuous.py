"""The continuous distillation loop (`rounds: N`, `run_rounds`).

Round k is a Context whose base model is round k-1's distilled model and whose unlabeled inputs are fresh:
items [(k-1)T, kT) of the task's pool built with train_size kT
(T = `data.train_size`, `round_pool`). Tasks' splits are prefix-stable, so these are the same items whatever N is,
never an earlier round's, and the test split is the same in every round (both checked, one clear line otherwise).
Round k-1's LoRA adapter is **merged** into its base weights (`<cache_dir>/merged/<checkpoint key>`, written once,
atomically) and round k trains a fresh LoRA adapter on that folder. Merged, not stacked: every round's base is one
ordinary HF folder that vLLM serves, lm-eval scores and `training=lora` trains exactly as the original model, and
round k's adapter stays the same size as round 1's. (A full fine-tune is a full folder already: no merge.) In cache
keys the merged model is `merged:<checkpoint key>`, a key that chains every earlier round's generations, curation
and training; nothing of round k depends on N, so a rerun with more rounds computes only the new rounds. Round 1
is exactly the single run (same keys). Round k's `system1` row is its base model (round k-1's distilled model,
merged) answering directly; its broad block (with `benchmarks`) compares round k's base with round k's model.
"""
from __future__ import annotations

import time
from pathlib import Path

from s2d.errors import UserError
from s2d.export import DISTILL_FILE
from s2d.loops.common import LoopRun
from s2d.results import comparisons, correctness
from s2d.stats import paired

ROUND_BLOCKS = ("system1", "system2", "distilled", "variants", "curation", "ablations", "broad", "stages")


def round_pool(k: int, train_size: int) -> slice:
    """Round k's (from 1) fresh unlabeled inputs: items [(k-1)T, kT) of the pool built with train_size kT."""
    return slice((k - 1) * train_size, k * train_size)


def check_round_data(task: str, k: int, test: list, first_test: list, pool: list, size: int, earlier: set) -> None:
    """Round k must be scored on round 1's test items and train on inputs no earlier round saw. `test`, `pool`:
    (item id, input hash) pairs; `earlier`: the input hashes of every earlier round's pool."""
    if test != first_test:
        raise UserError(f"task '{task}': its test split changes with data.train_size, so rounds would not be scored "
                        "on the same items; rounds > 1 needs a task with prefix-stable splits (e.g. addition, "
                        "addition_sycophancy, last_letter, coin_flip)")
    if len(pool) < size:
        raise UserError(f"task '{task}': round {k} needs unlabeled inputs {(k - 1) * size}..{k * size - 1}, the task "
                        f"has {(k - 1) * size + len(pool)}; lower rounds or data.train_size")
    seen = {h for _, h in pool} & earlier
    if seen:
        raise UserError(f"task '{task}': round {k}'s unlabeled inputs repeat {len(seen)} input(s) of an earlier round "
                        "(its splits are not prefix-stable); rounds > 1 needs fresh inputs per round")


def next_base(ctx) -> tuple[tuple[str, str | None], bool]:
    """The next round's base (folder, cache identity) from this round's distilled model, and whether it was already
    there: the LoRA adapter merged into this round's base (cached by the checkpoint key), a full fine-tune's own
    folder, or this round's base again when curation kept nothing to train on."""
    from s2d.models import merged_model, merged_path
    trained = ctx.trained
    if trained.path is None:
        return (ctx.model_path, ctx.base_identity), True
    if trained.method == "full":
        return (trained.path, f"checkpoint:{trained.key}"), True
    target = merged_path(trained.path)   # <cache>/merged/<checkpoint key>: the engine's swap merged it already
    print(f"[s2d] merging round adapter {trained.key} into {target}", flush=True)
    cached = merged_model(ctx.model_path, trained.path, target)
    return (str(target), f"merged:{trained.key}"), cached


def run_rounds(cfg, run_dir: Path, started, t0: float, log=lambda prefix="": None) -> LoopRun:
    from s2d.keys import input_digest
    from s2d.pipeline import prepare, run_stages
    from s2d.results import blocks, run_block

    n, size = int(cfg.rounds), int(cfg.data.train_size)
    entries, earlier, first_test, base, ctx, first_samples = [], set(), None, None, None, None
    for k in range(1, n + 1):
        merge = None
        if k > 1:
            start = time.perf_counter()
            base, merged = next_base(ctx)
            merge = {"cached": merged, "wall_s": round(time.perf_counter() - start, 2), "model": base[1]}
        print(f"[s2d] ===== round {k} of {n} =====", flush=True)
        pool = round_pool(k, size)
        ctx = prepare(cfg, run_dir / f"round{k}", base=base, pool=pool)
        ctx.log = log(f"round{k}/")
        test = [(i.id, input_digest(i)) for i in ctx.test_items]
        first_test = first_test or test
        pool_sig = [(i.id, input_digest(i)) for i in ctx.train_items]
        check_round_data(str(cfg.task.name), k, test, first_test, pool_sig, size, earlier)
        earlier |= {h for _, h in pool_sig}
        try:
            run_stages(ctx)
        finally:
            ctx.release_generator()   # the next round serves another base model
        if merge:
            ctx.stages = {"merge": merge, **ctx.stages}
        first_samples = first_samples or ctx.evaluated.samples
        entries.append({"round": k, "model": ctx.model_identity["path"], "pool": [pool.start, pool.stop],
                        **blocks(ctx), "versus_round1": versus_round1(first_samples, ctx.evaluated.samples)})
    results = {"run": {**run_block(cfg, run_dir, started, time.perf_counter() - t0), "rounds": n},
               **assemble_rounds(entries, comparisons({**ctx.evaluated.samples,
                                                       "system1": first_samples["system1"]})),
               "rounds": entries}
    return LoopRun(results, ctx.evaluated.samples, ctx.curated.examples,
                   str(run_dir / f"round{n}" / DISTILL_FILE), ctx.trained.path,
                   ctx.generated.path)


def assemble_rounds(entries: list[dict], compared: dict | None = None) -> dict:
    """The top-level blocks of a continuous run: `system1` is round 1's (the base model, the baseline every
    round is read against), the other rows and curation are the last round's, `stages` every round's
    (`round<k>/<stage>`); `comparisons` the last round's rows against round 1's System 1 on the same test items
    (`compared`, s2d.results.comparisons)."""
    last = entries[-1]
    out = {key: last[key] for key in ROUND_BLOCKS if key != "stages"}
    out["system1"] = entries[0]["system1"]
    out["comparisons"] = compared or {}
    out["stages"] = {f"round{e['round']}/{name}": s for e in entries for name, s in e["stages"].items()}
    return out


def versus_round1(first: dict[str, list[dict]], this: dict[str, list[dict]]) -> dict:
    """A round's System 2 and distilled rows against round 1's System 1 (the original model) on the same test
    items: what the loop has gained so far, paired (s2d.stats.paired). The round's own `comparisons` read the
    round against its base, the previous round's model."""
    base = correctness(first["system1"])
    return {row: paired(base, correctness(this[row])) for row in ("system2", "distilled") if row in this}
