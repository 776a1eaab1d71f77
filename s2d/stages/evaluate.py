"""Stage 4, evaluate: System 1, System 2 and distilled System 1 on the held-out test split, greedy.

    s2d data.test_size=100 eval.max_new_tokens=48
    s2d task=gsm8k technique=cot eval.votes=[1,5,10]            # + maj@k rows (paper Table 4)
    s2d task=coin_flip eval.prompt_variants=true                  # + System 1 prompt variants (paper Table 7)

Phases: key -> cached? -> compute -> write -> return. Each row is a cached generation of its own (base System 1
and System 2 are shared by every run with the same model, task and technique). Tokens per input are generated
tokens summed over every call a technique makes (the paper's #Tokens); for maj@k, summed over the k samples.
"""
from __future__ import annotations

from collections import Counter

from omegaconf import OmegaConf

from s2d.cache import code_versions, plain
from s2d.errors import UserError, check_positive
from s2d.outputs import Evaluated
from s2d.techniques.chain import system1_technique


def run(ctx) -> Evaluated:
    task, items, cfg = ctx.task, ctx.test_items, ctx.cfg
    base = {"model": ctx.model_identity, "task": plain(cfg.task), "seed": int(cfg.data.seed), "split": "test"}
    system1 = system1_technique(cfg.task, int(cfg.eval.max_new_tokens))
    system2 = ctx.technique
    checkpoint = ctx.trained.path
    distilled_payload = {"checkpoint": ctx.trained.key}
    distilled_factory = (lambda: ctx.generator(checkpoint)) if checkpoint else None
    plans = [("system1", system1, {}, None), ("system2", system2, {}, None)]
    untrained: dict[str, str] = {}   # distilled row -> base row it equals when curation kept nothing to train on
    if checkpoint:
        plans.append(("distilled", system1, distilled_payload, distilled_factory))
    else:
        untrained["distilled"] = "system1"
    for name, trained in ctx.trained.ablations.items():   # curation ablations (none, gold)
        if trained.path:
            plans.append((f"distilled[{name}]", system1, {"checkpoint": trained.key},
                          lambda path=trained.path: ctx.generator(path)))
        else:
            untrained[f"distilled[{name}]"] = "system1"
    for name, template in variant_templates(cfg).items():   # Table 7: the same rows under other System 1 prompts
        variant = system1_technique(OmegaConf.merge(cfg.task, {"system1_template": template}),
                                    int(cfg.eval.max_new_tokens))
        plans.append((f"system1@{name}", variant, {}, None))
        if checkpoint:
            plans.append((f"distilled@{name}", variant, distilled_payload, distilled_factory))
        else:
            untrained[f"distilled@{name}"] = f"system1@{name}"
    # Base-model rows first, then every distilled row: the base model is loaded once, then the adapter once.
    plans.sort(key=lambda p: p[0].startswith("distilled"))   # stable: the main distilled row stays first
    rows, samples, cached = {}, {}, True
    votes = sorted({int(k) for k in cfg.eval.get("votes") or [1]})
    for k in votes:
        check_positive("eval.votes", k)
    for row, technique, extra, factory in plans:
        payload = {**base, "technique": plain(technique.cfg), **extra,
                   **code_versions(task=task, technique=technique)}
        result = ctx.service.run(f"eval-{row}", technique, items, 1, 0.0, 1.0, payload, factory)
        scored = score(task, items, result.records)
        cached &= result.generated == 0
        if votes[-1] > 1 and "@" not in row:
            sampled = ctx.service.run(f"eval-{row}-sampled", technique, items, votes[-1],
                                      float(cfg.eval.temperature), float(cfg.eval.top_p), payload, factory)
            scored["metrics"]["majority"] = majority_metrics(task, items, sampled.records, votes)
            cached &= sampled.generated == 0
        rows[row], samples[row] = scored["metrics"], scored["samples"]
    for twin, base_row in untrained.items():   # nothing was kept to train on: the distilled model is the base model
        rows[twin] = {**rows[base_row], "note": "no training examples kept; distilled = base model"}
        samples[twin] = samples[base_row]
    return Evaluated(rows=rows, samples=samples, cached=cached)


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
    metrics = {"accuracy": correct / n, "tokens_per_input": tokens / n, "n": n, "unparsed": unparsed,
               "unparsed_rate": unparsed / n, "calls_per_input": calls / n, **task.extra_metrics(samples, items)}
    return {"metrics": metrics, "samples": samples}


def majority_vote(answers: list[str | None]) -> str | None:
    """The most frequent parsed answer (the first seen wins a tie), None if nothing parsed."""
    votes = Counter(a for a in answers if a is not None)
    return max(votes, key=lambda a: (votes[a], -answers.index(a))) if votes else None


def majority_metrics(task, items, records, votes: list[int]) -> dict:
    """maj@k accuracy and tokens (summed over the k samples) for each k, from the first k of the sampled records."""
    out = {}
    for k in votes:
        correct = tokens = 0
        for item in items:
            recs = records[item.id][:k]
            correct += task.is_correct(majority_vote([task.extract(r["output"]) for r in recs]), item)
            tokens += sum(r["tokens"] for r in recs)
        out[f"maj@{k}"] = {"accuracy": correct / len(items), "tokens_per_input": tokens / len(items)}
    return out
