"""Stage 5, broad: held-out benchmarks through lm-eval on the base and the distilled model; flag regressions.

    s2d benchmarks=quick              # or benchmarks=full, benchmarks=none (skip), benchmarks.tasks=[arc_easy,piqa]
    s2d benchmarks=quick benchmarks.model_type=vllm   # lm-eval's own vLLM model instead of HFLM

Phases: key -> cached? -> compute -> write -> return. Each model's scores are cached by model identity + rendered
task YAMLs + item subset, so a sweep evaluates the base model once. The LoRA adapter is evaluated through
lm-eval's PEFT support without merging (HFLM) or as its merged copy in the cache (vLLM); a full fine-tune by its
folder. `benchmarks.devices` passes lm-eval's own multi-device options through (HF `parallelize`, vLLM tensor /
data parallelism, `max_model_len`). Each benchmark's verdict (`verdicts`) compares the two models on the same
items (per-item scores from lm-eval's samples): exact test, Holm over the block, regressed / held / inconclusive.
"""
from __future__ import annotations

import random
from pathlib import Path

from s2d import keys
from s2d.broad_data import SHIPPED, count_docs, prepare_tasks
from s2d.cache import cached_json, keyed, plain
from s2d.errors import check_positive
from s2d.outputs import BroadScores
from s2d.stats import detectable_drop, holm, paired


def check(cfg) -> None:
    """lm-eval's model type is a schema choice; what is left is the sizes."""
    bcfg = cfg.benchmarks
    overrides = bcfg.get("limit_overrides") or {}
    limits = {"benchmarks.limit": bcfg.get("limit"),
              **{f"benchmarks.limit_overrides.{k}": v for k, v in overrides.items()}}
    for name, limit in limits.items():
        if limit is not None:
            check_positive(name, limit)


def run(ctx) -> BroadScores:
    bcfg = ctx.cfg.benchmarks
    if not bcfg.get("tasks"):
        return BroadScores(broad={}, cached=True, info={"skipped": True})
    plan = make_plan(ctx.cache_dir, bcfg, int(ctx.cfg.data.seed))
    base_key = keyed(ctx.cache_dir, keys.broad_scores(plan, model_identity=ctx.model_identity))
    base, base_cached = evaluate_cached(ctx, base_key, plan, ctx.model_path, None)
    train = ctx.trained
    if train.path is None:          # nothing was trained: the distilled model is the base model
        distilled, dist_cached = base, True
    else:
        dist_key = keyed(ctx.cache_dir, keys.broad_scores(plan, checkpoint=train.key))
        lora = ctx.cfg.training.method == "lora"
        distilled, dist_cached = evaluate_cached(ctx, dist_key, plan,
                                                 ctx.model_path if lora else train.path,
                                                 train.path if lora else None)
    broad = verdicts(base, distilled, float(bcfg.held_margin))
    return BroadScores(broad=broad, cached=base_cached and dist_cached,
                       info={"base_cached": base_cached, "distilled_cached": dist_cached})


def make_plan(cache_dir, bcfg, seed: int) -> dict:
    """Which lm-eval task and which item indices per benchmark, plus the settings that change scores."""
    names = list(plain(bcfg.tasks))
    shipped = [n for n in names if n in SHIPPED]
    include = prepare_tasks(cache_dir, shipped) if shipped else None
    overrides = plain(bcfg.get("limit_overrides")) or {}
    tasks = {}
    for name in names:
        limit = overrides.get(name, bcfg.limit)
        if name in SHIPPED:
            total = count_docs(cache_dir, name)
            k = total if limit is None else min(int(limit), total)
            indices = sorted(random.Random(f"{seed}-{name}").sample(range(total), k))
            yaml_text = (Path(include) / f"s2d_{name}.yaml").read_text()
            tasks[name] = {"lm_eval_task": f"s2d_{name}", "indices": indices, "yaml": yaml_text}
        else:   # a standard lm-eval task (needs the hub): its first `limit` items
            tasks[name] = {"lm_eval_task": name, "indices": None if limit is None else list(range(int(limit)))}
    plan = {"tasks": tasks, "include_path": str(include) if include else None,
            "num_fewshot": bcfg.num_fewshot, "apply_chat_template": bool(bcfg.apply_chat_template),
            "batch_size": int(bcfg.batch_size), "bootstrap_iters": int(bcfg.bootstrap_iters)}
    return {**plan, **keys.broad_plan_settings(str(bcfg.get("model_type") or "hf"))}


def evaluate_cached(ctx, key: str, plan: dict, model_path: str, adapter: str | None) -> tuple[dict, bool]:
    def score() -> dict:   # once per model and plan: a sweep scores the base model once, also in parallel jobs
        ctx.release_generator()
        return lm_eval_scores(plan, model_path, adapter, ctx.cfg.backend.dtype,
                              bool(ctx.cfg.model.get("trust_remote_code", False)), int(ctx.cfg.data.seed),
                              plain(ctx.cfg.benchmarks.get("devices")) or {})

    return cached_json(Path(ctx.cache_dir) / "broad" / f"{key}.json", score)


def lm_eval_scores(plan: dict, model_path: str, adapter: str | None, dtype: str, trust_remote_code: bool,
                   seed: int, devices: dict | None = None) -> dict:
    """Run lm-eval once over every planned benchmark; return score, stderr and per-item values for each.
    `devices` (`benchmarks.devices`): where lm-eval's model runs, lm-eval's own options; not in the cache key."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from s2d.backends import lm_eval_model

    tasks = plan["tasks"]
    needs_defaults = any(not t["lm_eval_task"].startswith("s2d_") for t in tasks.values())
    manager = TaskManager(include_path=plan["include_path"], include_defaults=needs_defaults)
    lm = lm_eval_model(plan.get("model_type") or "hf", model_path, adapter, dtype, plan["batch_size"],
                       trust_remote_code, seed, devices or {})
    samples = {t["lm_eval_task"]: t["indices"] for t in tasks.values() if t["indices"] is not None}
    out = simple_evaluate(model=lm, tasks=[t["lm_eval_task"] for t in tasks.values()], task_manager=manager,
                          samples=samples or None, num_fewshot=plan["num_fewshot"],
                          apply_chat_template=plan["apply_chat_template"], log_samples=True,
                          bootstrap_iters=plan["bootstrap_iters"], random_seed=seed, numpy_random_seed=seed,
                          torch_random_seed=seed, fewshot_random_seed=seed)
    scores = {}
    for name, t in tasks.items():
        task_name = t["lm_eval_task"]
        res = out["results"][task_name]
        metric_key = next(k for k in res if "," in k and "_stderr" not in k)
        metric, filt = metric_key.split(",", 1)
        per_item = {str(s["doc_id"]): float(s[metric]) for s in out["samples"][task_name] if s["filter"] == filt}
        stderr = res.get(f"{metric}_stderr,{filt}")
        scores[name] = {"metric": metric_key, "score": float(res[metric_key]),
                        "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                        "n": len(per_item), "per_item": per_item}
    return scores


def verdicts(base: dict, distilled: dict, margin: float, alpha: float = 0.05) -> dict:
    """Per benchmark, distilled - base on the items both were scored on: the paired difference with its 95% interval
    and exact McNemar p (s2d.stats.paired), Holm-adjusted over the block's benchmarks, and one of three verdicts:
    `regressed` (worse, adjusted p < alpha), `held` (the interval's lower end above -margin: no drop of `margin`
    or more), `inconclusive` (neither: too few items to tell). `detectable_drop`: the smallest drop this n finds
    with 80% power at the observed rate of disagreeing items, at Holm's strictest level (alpha / benchmarks)."""
    out = {name: _paired(name, base[name], distilled[name]) for name in base}
    adjusted = holm({name: v["p"] for name, v in out.items() if v["p"] is not None})
    for name, v in out.items():
        v["p_holm"] = adjusted.get(name)
        disagree = (v.pop("b_only") + v.pop("a_only")) / v["n"] if v["n"] else 0.0
        v["detectable_drop"] = detectable_drop(v["n"], disagree, alpha=alpha / max(1, len(out)))
        if v["delta"] is not None and v["delta"] < 0 and v["p_holm"] is not None and v["p_holm"] < alpha:
            v["verdict"] = "regressed"
        elif v["ci95"] is not None and v["ci95"][0] > -margin:
            v["verdict"] = "held"
        else:
            v["verdict"] = "inconclusive"
        v["regressed"] = v["verdict"] == "regressed"
        v["held_margin"] = margin
    return out


def _paired(name: str, base: dict, distilled: dict) -> dict:
    try:
        diff = paired(base["per_item"], distilled["per_item"])
    except ValueError as e:
        raise ValueError(f"benchmark {name} ({base['metric']}): {e}") from None
    return {"metric": base["metric"], "n": diff["n"], "base": base["score"], "distilled": distilled["score"],
            "delta": diff["delta"], "ci95": diff["ci95"], "p": diff["p"], "b_only": diff["b_only"],
            "a_only": diff["a_only"]}
