"""Every cache key's payload, in one module: what each cached output is made from.

A cached output's key is `cache.cache_key(payload)` (`cache.keyed` also records the payload, for `s2d-cache
list`). Each payload names its `kind` and `version` where it has them and everything the output depends on;
what a payload holds decides which cached results a run reuses, so a change here recomputes every result of
that kind for every user. `tests/test_keys.py` pins each kind's key for fixed inputs: a refactor that moves a
key fails there, before it throws away anyone's cache.

The stages call these builders and never write a payload by hand:

    pool / generations      System 2 over the unlabeled pool (generate), every cached generation's sampling
    evaluation_row / sampled_row   an evaluation row's greedy generations, and its sampled ones (maj@k)
    distill_set / ablation_filter   a filter's curation of the pool's generations (curate), an ablation's filter
    checkpoint              a training (train)
    broad_scores            one model's lm-eval scores over a benchmark plan (broad)
    usc / perturbed         the filters' own generations
    mtbench_answers         mtbench_judge's model answers, from which its pairs are made
    mix                     a multi-task run's mixed set (s2d/loops/)
"""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from s2d.cache import cache_key, plain

# Fields added to a payload after caches existed are left out where they have the value every earlier run had,
# so that those caches still hold. The one table of such values (the seeds are left out where they equal the
# seed already in the payload: `pool`'s data seed, `sampled_row`'s sampling seed):
LEFT_OUT_AT = {
    "target": {"template": None, "pick": "first"},   # distill_set: the run's `target` block
    "training.dtype": "auto",                        # checkpoint: what every training did before the key existed
    "benchmarks.model_type": "hf",                   # broad_scores: lm-eval's HFLM
    "code_version": 1,                               # every plugin's `version` (code_versions)
}
RESUME_ONLY = ("save_steps",)   # training keys that change how often a run saves, never what it trains


def _unless(name: str, value: Any, default: Any) -> dict:
    return {} if value == default else {name: value}


def code_versions(**plugins) -> dict:
    """The code versions of the plugins a cached result depends on (a task's extraction, a technique's program, a
    filter's rule). Each plugin class has `version = 1`; bump it when a change alters outputs (say `extract` now
    parses differently) and every cached result it touched is recomputed."""
    default = LEFT_OUT_AT["code_version"]
    changed = {kind: int(getattr(p, "version", default)) for kind, p in plugins.items()
               if getattr(p, "version", default) != default}
    return {"code_versions": changed} if changed else {}


def pool(cfg, model_identity: dict, task=None, technique=None) -> dict:
    """System 2 over the unlabeled pool: everything its outputs depend on (model, technique prompts, task data,
    sampling seed), never the training or filter choice, so sweeps over those reuse one generation."""
    return {"model": model_identity, "task": plain(cfg.task), "technique": plain(cfg.technique),
            "seed": int(cfg.seed), "split": "train", **_unless("data_seed", int(cfg.data.seed), int(cfg.seed)),
            **code_versions(task=task, technique=technique)}


def generations(payload: dict, n_samples: int, temperature: float, top_p: float) -> dict:
    """Any cached generation: what it was made from (`payload`, one of the builders here) and how it was sampled."""
    return {"kind": "generations", "version": 1, **payload,
            "n_samples": n_samples, "temperature": temperature, "top_p": top_p}


def evaluation_row(cfg, model_identity: dict, task, technique, checkpoint: str | None = None) -> dict:
    """An evaluation row's generations on the test split: the base model's, or a trained one's (`checkpoint`)."""
    return {"model": model_identity, "task": plain(cfg.task), "seed": int(cfg.data.seed), "split": "test",
            "technique": plain(technique.cfg), **({"checkpoint": checkpoint} if checkpoint else {}),
            **code_versions(task=task, technique=technique)}


def sampled_row(cfg, row: dict) -> dict:
    """A row's sampled generations (maj@k, the compute-matched row): they also follow the run seed
    (`GenerationService.seed`), where it differs from `data.seed`, already in the row's payload."""
    return {**row, **_unless("sampling_seed", int(cfg.seed), int(cfg.data.seed))}


def target(cfg) -> dict:
    """The run's `target` block as plain values (`template`, `pick`), defaults filled in."""
    block, default = cfg.get("target") or {}, LEFT_OUT_AT["target"]
    return {"template": None if block.get("template") is None else str(block.get("template")),
            "pick": str(block.get("pick") or default["pick"])}


def distill_set(cfg, generations_key: str, filter_cfg, task, filt, items) -> dict:
    """A filter's distillation set from the pool's generations, for these training inputs."""
    return {"kind": "curate", "version": 1, "generations": generations_key, "filter": plain(filter_cfg),
            "task": plain(cfg.task), **_unless("target", target(cfg), LEFT_OUT_AT["target"]),
            **code_versions(task=task, filter=filt), "items": [i.id for i in items]}


def ablation_filter(run_filter_cfg, ablation_cfg) -> dict:
    """An ablation filter as its distillation set's key names it: the run filter's config under the ablation's
    (before ablations were composed from their own YAML, they ran on the run filter's config with the ablation's
    `impl` and `name`; for none and gold this is that config, so their sets keep their keys, and a filter with keys
    of its own, such as usc, has them in its key)."""
    return plain(OmegaConf.merge(run_filter_cfg, ablation_cfg))


def training_config(training_cfg) -> dict:
    """The training config as it enters the checkpoint key: without the resume-only keys, `dtype` left out at
    its default."""
    cfg = {k: v for k, v in plain(training_cfg).items() if k not in RESUME_ONLY}
    if cfg.get("dtype", LEFT_OUT_AT["training.dtype"]) == LEFT_OUT_AT["training.dtype"]:
        cfg.pop("dtype", None)
    return cfg


def checkpoint(distill_key: str, model_path: str, training_cfg, seed: int) -> dict:
    """A training: which set, from which base model (its path or identity, not its precision: training's dtype is
    in `training`), with which recipe and seed."""
    return {"kind": "train", "version": 1, "distill_set": distill_key, "model": model_path,
            "training": training_config(training_cfg), "seed": int(seed)}


def broad_plan_settings(model_type: str) -> dict:
    """What of lm-eval's model type enters a broad plan (and so its key): nothing at HFLM."""
    return _unless("model_type", model_type, LEFT_OUT_AT["benchmarks.model_type"])


def broad_scores(plan: dict, model_identity: dict | None = None, checkpoint: str | None = None) -> dict:
    """One model's scores over a benchmark plan: the base model by identity (scores do not depend on the
    generation engine, left out), or a trained one by its checkpoint key."""
    if checkpoint is not None:
        return {"kind": "broad", "version": 1, "checkpoint": checkpoint, "plan": plan}
    model = {k: v for k, v in model_identity.items() if k != "engine"}
    return {"kind": "broad", "version": 1, "model": model, "plan": plan}


def usc(pool_key: str, filter_cfg, filt, model_identity: dict, items) -> dict:
    """Universal self-consistency's composed answers over the pool's generations, for these inputs."""
    return {"generations": pool_key, "filter": plain(filter_cfg), **code_versions(filter=filt),
            "model": model_identity, "items": [i.id for i in items]}


def perturbed(pool_payload: dict, filter_cfg) -> dict:
    """System 2 over the perturbed copies of the pool's inputs (filter=perturbation)."""
    return {**pool_payload, "perturbed": True, "filter": plain(filter_cfg)}


def mtbench_answers(model_identity: dict, seed: int, max_new_tokens: int) -> dict:
    """The judged model's own turn-1 answers to MT-bench questions."""
    return {"model": model_identity, "seed": int(seed), "what": "mtbench turn-1 answers",
            "max_new_tokens": int(max_new_tokens)}


def mix(seed: int, sets: dict[str, list]) -> dict:
    """A multi-task run's mixed set: task -> [its distillation set's key, its weight]."""
    return {"kind": "mix", "version": 1, "seed": int(seed), "sets": sets}


def input_digest(item) -> str:
    """An item's input, hashed: a cached record counts only for the input it was made from."""
    return cache_key(item.inputs(), length=12)
