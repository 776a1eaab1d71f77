"""Stage 4, evaluate: System 1, System 2 and distilled System 1 on the held-out test split, greedy.

    s2d data.test_size=100 eval.max_new_tokens=48
    s2d task=gsm8k technique=cot eval.votes=[1,5,10]            # + maj@k rows (paper Table 4)
    s2d task=coin_flip eval.prompt_variants=true                  # + System 1 prompt variants (paper Table 7)

Phases: key -> cached? -> compute -> write -> return. Each row is a cached generation of its own (base System 1
and System 2 are shared by every run with the same model, task and technique). Tokens per input are generated
tokens summed over every call a technique makes (the paper's #Tokens); for maj@k, summed over the k samples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from omegaconf import OmegaConf

from s2d import keys
from s2d.errors import UserError, check_positive
from s2d.outputs import Evaluated
from s2d.stats import accuracy_interval
from s2d.techniques.chain import system1_technique
from s2d.votes import majority_vote


@dataclass
class Row:
    """One row of the results table: which model (`arm`: system1 | system2 | distilled | joint, the multi-task
    model of s2d/loops/), trained on which ablation filter's set (None: the run's filter), under which System 1
    prompt variant (None: the task's own)."""
    arm: str
    filter: str | None = None
    variant: str | None = None

    @property
    def name(self) -> str:
        """The row's key in results.json: `distilled`, `distilled[none]`, `system1@flip_means_reverse`."""
        return self.arm + (f"[{self.filter}]" if self.filter else "") + (f"@{self.variant}" if self.variant else "")


@dataclass
class RowPlan:
    row: Row
    technique: object
    checkpoint: str | None = None                   # the trained model's key (None: the base model)
    generator: object = None                        # factory of the trained model's generator; None: the base
    same_as: Row | None = None                      # nothing trained: the row equals this base-model row
    matched: bool = False                           # System 1 maj@k at System 2's tokens (`compute_matched_k`)


def check(cfg) -> None:
    check_positive("eval.max_new_tokens", cfg.eval.max_new_tokens)
    for k in cfg.eval.get("votes") or [1]:
        check_positive("eval.votes", k)


def run(ctx) -> Evaluated:
    plans = plan_rows(ctx)
    rows, samples, cached = score_rows(ctx, plans)
    return Evaluated(rows=rows, samples=samples, cached=cached)


def preview(ctx) -> tuple[list[str], dict[str, float], bool]:
    """The base-model rows (System 1, System 2, prompt variants) scored before training, while the engine still
    serves the base model: their generations are cached, so `run` reads them back. Returns the lines to print, each
    row's seconds (a distilled row costs about what System 1's did: the same prompts, answers as short) and whether
    every row came from the cache (the stage's `cached` says so for the work done here too)."""
    rows, seconds, cached = {}, {}, True
    for plan in base_plans(ctx)[0]:
        start = time.perf_counter()
        scored, _, row_cached = score_rows(ctx, [plan], known=rows)
        rows.update(scored)
        cached &= row_cached
        seconds[plan.row.name] = time.perf_counter() - start
    width = max(len(name) for name in rows)
    lines = [f"{name:{width}}  accuracy {m['accuracy']:6.1%}  tokens/input {m['tokens_per_input']:6.1f}  n {m['n']}"
             for name, m in rows.items()]
    return lines, seconds, cached


def base_plans(ctx) -> tuple[list[RowPlan], dict]:
    """The base-model rows, and the System 1 technique of each prompt variant (None: the task's own prompt)."""
    cfg = ctx.cfg
    system1 = system1_technique(cfg.task, int(cfg.eval.max_new_tokens))
    plans = [RowPlan(Row("system1"), system1), RowPlan(Row("system2"), ctx.technique)]
    if cfg.eval.get("compute_matched"):   # "does System 2 beat sampling System 1 more often at the same cost?"
        plans.append(RowPlan(Row("system1_matched"), system1, matched=True))
    variants = {None: system1}
    for name, template in variant_templates(cfg).items():   # Table 7: the same rows under other System 1 prompts
        variants[name] = system1_technique(OmegaConf.merge(cfg.task, {"system1_template": template}),
                                           int(cfg.eval.max_new_tokens))
        plans.append(RowPlan(Row("system1", variant=name), variants[name]))
    return plans, variants


def plan_rows(ctx) -> list[RowPlan]:
    """Every row of the table, base-model rows first, then every distilled row: the base model serves once, then
    each trained model once."""
    plans, variants = base_plans(ctx)
    trained = {None: ctx.trained, **ctx.trained.ablations}   # the run's filter, then curation ablations (none, gold)
    for filter_name, model in trained.items():
        for variant, technique in variants.items():
            if filter_name is not None and variant is not None:
                continue   # prompt variants are scored for the run's own distilled model only
            row = Row("distilled", filter_name, variant)
            if model.path:
                plans.append(RowPlan(row, technique, model.key, lambda path=model.path: ctx.generator(path)))
            else:
                plans.append(RowPlan(row, technique, same_as=Row("system1", variant=variant)))
    return plans


def score_rows(ctx, plans: list[RowPlan], known: dict | None = None) -> tuple[dict, dict, bool]:
    """Generate (or read from the cache) and score each planned row; maj@k rows where `eval.votes` asks. `known`:
    rows scored before (the compute-matched row needs System 1's and System 2's tokens)."""
    task, items, cfg = ctx.task, ctx.test_items, ctx.cfg
    votes = sorted({int(k) for k in cfg.eval.get("votes") or [1]})
    rows, samples, cached = {}, {}, True
    for plan in [p for p in plans if p.same_as is None]:
        name, technique = plan.row.name, plan.technique
        payload = keys.evaluation_row(cfg, ctx.model_identity, task, technique, plan.checkpoint)
        if plan.matched:
            seen = {**(known or {}), **rows}
            k = compute_matched_k(seen["system1"]["tokens_per_input"], seen["system2"]["tokens_per_input"])
            sampled = ctx.service.run("eval-system1-sampled", technique, items, k, float(cfg.eval.temperature),
                                      float(cfg.eval.top_p), keys.sampled_row(cfg, payload), plan.generator)
            rows[name], samples[name] = majority_row(task, items, sampled.records, k)
            cached &= sampled.generated == 0
            continue
        result = ctx.service.run(f"eval-{name}", technique, items, 1, 0.0, 1.0, payload, plan.generator)
        scored = score(task, items, result.records)
        cached &= result.generated == 0
        if votes[-1] > 1 and plan.row.variant is None:
            sampled = ctx.service.run(f"eval-{name}-sampled", technique, items, votes[-1],
                                      float(cfg.eval.temperature), float(cfg.eval.top_p),
                                      keys.sampled_row(cfg, payload), plan.generator)
            scored["metrics"]["majority"] = majority_metrics(task, items, sampled.records, votes)
            cached &= sampled.generated == 0
        rows[name], samples[name] = scored["metrics"], scored["samples"]
    for plan in [p for p in plans if p.same_as is not None]:   # nothing was kept to train on: = the base model
        twin = plan.same_as.name
        rows[plan.row.name] = {**rows[twin], "note": "no training examples kept; distilled = base model"}
        samples[plan.row.name] = samples[twin]
    return _in_table_order(rows, plans), _in_table_order(samples, plans), cached


def _in_table_order(by_name: dict, plans: list[RowPlan]) -> dict:
    return {p.row.name: by_name[p.row.name] for p in plans}


def variant_templates(cfg) -> dict[str, str]:
    if not cfg.eval.get("prompt_variants"):
        return {}
    variants = cfg.task.get("prompt_variants")
    if not variants:
        raise UserError(f"eval.prompt_variants=true needs a task with prompt_variants; task '{cfg.task.name}' has "
                        "none (valid: coin_flip)")
    return dict(variants)


def score(task, items, records) -> dict:
    """Exact match after normalisation, unparsed outputs counted, mean generated tokens per input, plus the task's
    own metrics (per-group accuracy, % inconsistent)."""
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
    metrics = {"accuracy": correct / n, "ci95": accuracy_interval(correct, n), "tokens_per_input": tokens / n,
               "n": n, "unparsed": unparsed,
               "unparsed_rate": unparsed / n, "calls_per_input": calls / n, **task.extra_metrics(samples, items)}
    return {"metrics": metrics, "samples": samples}


def compute_matched_k(system1_tokens: float, system2_tokens: float) -> int:
    """The number of System 1 samples whose summed tokens per input come closest to System 2's (at least 1)."""
    return max(1, round(system2_tokens / system1_tokens)) if system1_tokens > 0 else 1


def majority_row(task, items, records, k: int) -> tuple[dict, list[dict]]:
    """System 1 maj@k as a row of its own: metrics (k, accuracy with its interval, tokens summed over the k
    samples) and per-item samples (for the paired comparisons)."""
    samples, correct, tokens = [], 0, 0
    for item in items:
        recs = records[item.id][:k]
        predicted = majority_vote([task.extract(r["output"]) for r in recs])
        ok = bool(task.is_correct(predicted, item))
        correct += ok
        tokens += sum(r["tokens"] for r in recs)
        samples.append({"id": item.id, "question": item.question, "gold": task.normalize(item.answer),
                        "output": recs[0]["output"], "predicted": predicted, "correct": ok,
                        "tokens": sum(r["tokens"] for r in recs), "trace": []})
    n = len(items)
    unparsed = sum(1 for s in samples if s["predicted"] is None)
    return ({"accuracy": correct / n, "ci95": accuracy_interval(correct, n), "tokens_per_input": tokens / n, "n": n,
             "unparsed": unparsed, "unparsed_rate": unparsed / n, "k": k}, samples)


def majority_metrics(task, items, records, votes: list[int]) -> dict:
    """maj@k accuracy and tokens (summed over the k samples) for each k, from the first k of the sampled records."""
    out = {}
    for k in votes:
        metrics, _ = majority_row(task, items, records, k)
        out[f"maj@{k}"] = {"accuracy": metrics["accuracy"], "tokens_per_input": metrics["tokens_per_input"]}
    return out
