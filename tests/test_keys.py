"""Cache keys are stable where the inputs are: a refactor that changes a key silently throws away every user's
cached results (the demo's System 2 pass alone is minutes on a 2-core CPU, a 70B one hours on GPUs).

Every kind of key (s2d/keys.py) is computed here through the code path a run takes (the stage or plugin calls
`keyed` / `service.run`; a recorder takes the payload and stops it there), for fixed inputs over several configs
that reach each left-out-at-default rule, and compared with `golden_keys.json`, made by the code before s2d/keys.py
existed. Change a golden key only with a change that alters what is computed, and say so in the commit."""
import functools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from s2d import keys
from s2d.cache import cache_key
from s2d.config_tree import CONF_DIR
from s2d.filters.base import Pool
from s2d.generation import GenerationService
from s2d.pipeline import Context
from s2d.registry import build
from s2d.tasks.base import Item

GOLDEN = json.loads((Path(__file__).parent / "golden_keys.json").read_text())
ITEMS = [Item("a1", "What is 2+3?", "5"), Item("a2", "What is 4+4?", "8", {"x": "y"})]
IDENTITY = {"path": "Qwen/Qwen2.5-0.5B-Instruct", "dtype": "float32", "engine": "vllm"}
SCENARIOS = {
    "demo": ["experiment=demo"],
    "demo_seed1": ["experiment=demo", "seed=1"],            # data.seed pinned at 0: the seeds enter the keys
    "default": [],                                          # target at its defaults: left out
    "bf16_train": ["training.dtype=bfloat16", "target.template='The answer is {answer}.'"],
    "usc": ["experiment=paper_table2"],
    "perturb": ["task=mtbench_judge", "technique=bsm", "filter=perturbation"],
    "vllm_broad": ["benchmarks=quick", "benchmarks.model_type=vllm"],
}
# System 2 (S2A, 3 samples) over the demo's unlabeled inputs (of any pool size: records are per item), seed 0, in
# fp32, with the model identity a run has: the key `make demo` has written since its cache was made.
DEMO_POOL_KEY = "8fb072756705117d"


class Stop(Exception):
    """Raised by the recorders once a key is taken: nothing past the key is computed."""


def composed(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, "backend.dtype=float32"])


class RecordingService(GenerationService):
    """The generation service, recording the key of each generation asked for instead of generating; `passes`
    calls return empty-scored records first (a sampled row's key comes after its greedy one)."""

    def __init__(self, cfg, tmp_path, passes=0):
        super().__init__(cache_dir=tmp_path, seed=int(cfg.seed), batch_size=8, model_identity=IDENTITY,
                         generator=lambda: None)
        self.keys, self.passes = [], passes

    def run(self, label, technique, items, n_samples, temperature, top_p, key_payload, gen_factory=None):
        self.keys.append(cache_key(keys.generations(key_payload, n_samples, temperature, top_p)))
        if len(self.keys) > self.passes:
            raise Stop
        return SimpleNamespace(records={i.id: [{"output": "5", "tokens": 1}] * n_samples for i in items},
                               generated=0)


def recorded(call, service=None, recorder=None) -> str:
    try:
        call()
    except Stop:
        pass
    return (service.keys if service is not None else recorder)[-1]


def stage_keys(overrides, tmp_path, monkeypatch) -> dict:
    from s2d.stages import broad, curate, evaluate, train
    cfg = composed(overrides)
    task, technique, filt = build("task", cfg.task), build("technique", cfg.technique), build("filter", cfg.filter)
    pool = keys.pool(cfg, IDENTITY, task, technique)
    out = {"pool": cache_key(keys.generations(pool, filt.samples_per_input, filt.temperature, filt.top_p))}

    # evaluate: every row's greedy and sampled generations, and the compute-matched row
    monkeypatch.setattr(evaluate, "score", lambda task, items, records: {"metrics": {}, "samples": []})
    monkeypatch.setattr(evaluate, "majority_metrics", lambda *a: {})
    cfg_eval = OmegaConf.merge(cfg, {"eval": {"votes": [1, 3], "compute_matched": True}})
    plans, _ = evaluate.base_plans(SimpleNamespace(cfg=cfg_eval, technique=technique))
    plans.append(evaluate.RowPlan(evaluate.Row("distilled"), plans[0].technique, "c" * 16))
    known = {"system1": {"tokens_per_input": 14.3}, "system2": {"tokens_per_input": 52.4}}
    for plan in plans:
        for name, passes in ((f"eval/{plan.row.name}", 0),) if plan.matched else \
                ((f"eval/{plan.row.name}/greedy", 0), (f"eval/{plan.row.name}/sampled", 1)):
            service = RecordingService(cfg_eval, tmp_path, passes=passes)
            ctx = SimpleNamespace(cfg=cfg_eval, task=task, test_items=ITEMS, model_identity=IDENTITY,
                                  service=service)
            out[name] = recorded(functools.partial(evaluate.score_rows, ctx, [plan], known=known), service)

    # curate, train, broad: the key each stage asks `keyed` for
    taken = []

    def take(cache_dir, payload):
        taken.append(cache_key(payload))
        raise Stop

    monkeypatch.setattr(curate, "keyed", take)
    ctx = SimpleNamespace(cfg=cfg, cache_dir=tmp_path, generated=SimpleNamespace(key="g" * 16), task=task,
                          train_items=ITEMS)
    out["curate"] = recorded(lambda: curate.curate_cached(ctx, cfg.filter, "x.jsonl", filt), recorder=taken)
    out["checkpoint"] = train.checkpoint_key(SimpleNamespace(cfg=cfg, cache_dir=tmp_path, model_identity=IDENTITY),
                                             "d" * 16)
    monkeypatch.setattr(broad, "keyed", lambda cache_dir, payload: taken.append(cache_key(payload)) or taken[-1])
    monkeypatch.setattr(broad, "make_plan", lambda cache_dir, bcfg, seed: {
        "tasks": {"arc_easy": {"indices": [1, 2]}}, "num_fewshot": 0,
        **keys.broad_plan_settings(str(bcfg.get("model_type") or "hf"))})
    monkeypatch.setattr(broad, "evaluate_cached", lambda *a, **k: ({}, True))
    monkeypatch.setattr(broad, "verdicts", lambda *a: {})
    cfg_broad = OmegaConf.create(OmegaConf.to_container(cfg))
    cfg_broad.benchmarks.tasks, cfg_broad.benchmarks.held_margin = ["arc_easy"], 0.05
    broad.run(SimpleNamespace(cfg=cfg_broad, cache_dir=tmp_path, model_identity=IDENTITY, model_path="/m",
                              trained=SimpleNamespace(path="/x", key="k" * 16)))
    out["broad/base"], out["broad/distilled"] = taken[-2:]

    # the filters' own generations
    if cfg.filter.name == "usc":
        service = RecordingService(cfg, tmp_path)
        filt.plan = lambda *a: {"a1": ("usc", ITEMS[0]), "a2": ("random", "x")}
        out["usc"] = recorded(lambda: filt.choose(service, task, ITEMS, Pool({}, key="p" * 16)), service)
    if cfg.filter.name == "perturbation":
        service = RecordingService(cfg, tmp_path)
        pair = [Item("q1", "Q?", "A", {"answer_a": "x", "answer_b": "y"})]
        out["perturbed"] = recorded(lambda: filt.choose(service, task, pair, Pool({}, "p" * 16, pool, technique)),
                                    service)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_kind_of_key_is_what_it_was(scenario, tmp_path, monkeypatch):
    assert stage_keys(SCENARIOS[scenario], tmp_path, monkeypatch) == GOLDEN[scenario]


@pytest.mark.parametrize("scenario,overrides", [("demo_full", ["experiment=demo_full"]),
                                                ("usc", ["experiment=paper_table2"])])
def test_ablation_sets_keep_their_keys(scenario, overrides, tmp_path, monkeypatch):
    """Ablations are composed from their own filter YAML now (s2d/stages/curate.py); the keys of their sets are
    what they were when an ablation ran on the run filter's config (keys.ablation_filter)."""
    from s2d.stages import curate
    cfg = composed(overrides)
    taken = []
    monkeypatch.setattr(curate, "keyed", lambda cache_dir, payload: taken.append(cache_key(payload)) or taken[-1])
    cached_set = {"stats": {"kept": 0, "inputs": 2}, "examples": []}
    monkeypatch.setattr(curate, "cached_json", lambda path, compute: (cached_set, True))
    records = {i.id: [{"output": "5"}] for i in ITEMS}
    ctx = SimpleNamespace(cfg=cfg, cache_dir=tmp_path, run_dir=tmp_path, task=build("task", cfg.task),
                          filter=build("filter", cfg.filter), technique=build("technique", cfg.technique),
                          train_items=ITEMS, generated=SimpleNamespace(key="g" * 16, records=records), pool_payload={},
                          service=None)
    curate.run(ctx)
    assert dict(zip(cfg.ablations, taken[1:])) == {name.split("/")[1]: key for name, key in GOLDEN["ablations"].items()
                                                   if name.startswith(f"{scenario}/")}


@pytest.mark.parametrize("scenario", ["demo", "default"])
def test_the_joint_models_row_is_keyed_as_any_trained_models_row(scenario, tmp_path, monkeypatch):
    """A multi-task run's joint row (loops/multitask.py joint_row) is a trained model's System 1 row: the same key
    as the distilled row of that checkpoint (the rerun check across versions caught a key that had moved here)."""
    from s2d.loops.multitask import joint_row
    from s2d.stages import evaluate
    monkeypatch.setattr(evaluate, "score", lambda task, items, records: {"metrics": {}, "samples": []})
    cfg = OmegaConf.merge(composed(SCENARIOS[scenario]), {"eval": {"votes": [1, 3], "compute_matched": True}})
    service = RecordingService(cfg, tmp_path)
    ctx = SimpleNamespace(cfg=cfg, task=build("task", cfg.task), test_items=ITEMS, model_identity=IDENTITY,
                          service=service, generator=lambda path: None)
    recorded(lambda: joint_row(ctx, SimpleNamespace(path="/x", key="c" * 16)), service)
    assert service.keys[0] == GOLDEN[scenario]["eval/distilled/greedy"]


def test_the_judges_answers_and_the_input_digest_keep_their_keys(tmp_path):
    cfg = composed(["task=mtbench_judge", "technique=bsm"])
    service = RecordingService(cfg, tmp_path)
    assert recorded(lambda: build("task", cfg.task).model_answers(service, 0, 4, 4), service) \
        == GOLDEN["mtbench_answers"]
    assert keys.input_digest(ITEMS[1]) == GOLDEN["input_hash"]


def test_the_demos_system2_generations_keep_their_cache_key():
    cfg = composed(["experiment=demo"])
    filt = build("filter", cfg.filter)
    model = Context(cfg=cfg, run_dir=Path("unused"), cache_dir=Path("unused")).model_identity   # as a run has it
    payload = keys.pool(cfg, model, build("task", cfg.task), build("technique", cfg.technique))
    key = cache_key(keys.generations(payload, filt.samples_per_input, filt.temperature, filt.top_p))
    assert key == DEMO_POOL_KEY, "the demo's cache key changed: every cached generation would be recomputed"


def test_a_field_is_left_out_only_at_its_default():
    """Each rule of keys.LEFT_OUT_AT: at the default the payload is what it was before the field existed."""
    v1, v2 = SimpleNamespace(version=1), SimpleNamespace(version=2)
    assert keys.code_versions(task=v1, technique=v1) == {}
    assert keys.code_versions(task=v2, technique=v1) == {"code_versions": {"task": 2}}
    base = {"method": "lora", "save_steps": 200}
    assert keys.training_config(base) == keys.training_config({**base, "dtype": "auto"}) == {"method": "lora"}
    assert keys.training_config({**base, "dtype": "bfloat16"})["dtype"] == "bfloat16"
    assert keys.broad_plan_settings("hf") == {} and keys.broad_plan_settings("vllm") == {"model_type": "vllm"}
