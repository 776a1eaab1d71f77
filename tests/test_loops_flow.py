"""The loops end to end without a model (s2d/loops/): the real generate, curate and evaluate stages and their
caches over a scripted generator; only training and merging are stand-ins that write what the real ones would.
The same flows on the real embedded model: tests/integration/test_loops.py."""
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from s2d.loops.continuous import run_rounds
from s2d.loops.multitask import run_multitask
from tests.fakes import ScriptedGenerator
from tests.test_config import _compose


@pytest.fixture
def fakes(monkeypatch):
    """A scripted model that always answers 42, and stand-ins for the training process and the LoRA merge."""
    seen = {"trained_on": [], "merged": []}

    def launch(spec):
        seen["trained_on"].append((spec["model_path"], len(spec["examples"])))
        target = Path(spec["target"])
        target.mkdir(parents=True)
        (target / "s2d_train.json").write_text(json.dumps({"examples": len(spec["examples"])}))

    def merged_model(base_path, adapter, target):
        seen["merged"].append((base_path, adapter))
        if (Path(target) / "config.json").exists():
            return True
        Path(target).mkdir(parents=True)
        (Path(target) / "config.json").write_text("{}")
        return False

    monkeypatch.setattr("s2d.backends.make_generator",
                        lambda *a, **k: ScriptedGenerator(lambda prompt: "The answer is 42."))
    monkeypatch.setattr("s2d.pipeline.resolve_model_path", lambda model_cfg, models_dir: "/models/base")
    monkeypatch.setattr("s2d.stages.train.launch", launch)
    monkeypatch.setattr("s2d.models.merged_model", merged_model)
    return seen


def _overrides(tmp_path):
    return [f"paths.cache_dir={tmp_path / 'cache'}", "data.train_size=3", "data.test_size=2", "logger=none",
            "training.max_steps=1"]


def _rounds(tmp_path, n, folder):
    cfg = _compose(["task=addition", "technique=system1", "filter=none", f"rounds={n}", *_overrides(tmp_path)])
    return run_rounds(cfg, tmp_path / folder, dt.datetime.now(), time.perf_counter())


def test_rounds_chain_merged_models_and_a_third_round_computes_only_round_3(tmp_path, fakes):
    two = _rounds(tmp_path, 2, "two").results
    r1, r2 = two["rounds"]
    assert (r1["pool"], r2["pool"]) == ([0, 3], [3, 6]) and r1["model"] == "embedded:smollm2-135m-instruct"
    key1 = r1["stages"]["train"]["key"]
    assert r2["model"] == f"merged:{key1}" and r2["stages"]["merge"]["cached"] is False
    merged1 = str(tmp_path / "cache" / "merged" / key1)
    assert fakes["trained_on"] == [("/models/base", 3), (merged1, 3)]   # round 2 trains on round 1's merged model
    assert r1["stages"]["generate"]["generated"] == r2["stages"]["generate"]["generated"] == 3
    assert r2["stages"]["generate"]["key"] != r1["stages"]["generate"]["key"]
    assert two["system1"] == r1["system1"] and two["distilled"] == r2["distilled"] and two["run"]["rounds"] == 2
    assert set(two["stages"]) >= {"round1/generate", "round2/merge", "round2/evaluate"}
    assert (tmp_path / "two" / "round2" / "distill_set.jsonl").exists()

    three = _rounds(tmp_path, 3, "three").results
    for old, new in zip((r1, r2), three["rounds"]):
        assert all(s["cached"] for s in new["stages"].values()), new["stages"]
        assert new["stages"]["generate"]["key"] == old["stages"]["generate"]["key"]
        assert new["distilled"] == old["distilled"]
    r3 = three["rounds"][2]
    assert r3["stages"]["generate"]["generated"] == 3 and not r3["stages"]["train"]["cached"]
    assert not r3["stages"]["merge"]["cached"] and r3["pool"] == [6, 9]
    assert len(fakes["trained_on"]) == 3 and fakes["trained_on"][2][0].endswith(r2["stages"]["train"]["key"])


def test_round_1_has_the_single_runs_keys(tmp_path, fakes):
    from s2d.pipeline import prepare, run_stages
    cfg = _compose(["task=addition", "technique=system1", "filter=none", *_overrides(tmp_path)])
    single = prepare(cfg, tmp_path / "single")
    run_stages(single)
    r1 = _rounds(tmp_path, 2, "rounds").results["rounds"][0]
    assert all(s["cached"] for s in r1["stages"].values()), r1["stages"]
    assert {n: s["key"] for n, s in r1["stages"].items() if "key" in s} == \
        {n: s["key"] for n, s in single.stages.items() if "key" in s}


TASKS = ("tasks=[{task: addition, technique: cot, filter: none, weight: 2},"
         " {task: addition_sycophancy, technique: s2a, filter: none, weight: 0.5, name: opinions}]")


def test_two_tasks_each_distilled_alone_then_one_joint_model_scored_on_both(tmp_path, fakes):
    overrides = [TASKS, *_overrides(tmp_path)]
    cfg = _compose(overrides)
    out = run_multitask(cfg, tmp_path / "multi", overrides, dt.datetime.now(), time.perf_counter())
    res = out.results
    assert list(res["tasks"]) == ["addition", "opinions"]
    assert res["tasks"]["opinions"]["task"] == "addition_sycophancy" and res["tasks"]["opinions"]["technique"] == "s2a"
    assert res["run"]["technique"] == "cot+s2a" and res["run"]["tasks"] == ["addition", "opinions"]
    for t in res["tasks"].values():
        assert {"system1", "system2", "distilled", "joint"} <= set(t) and t["joint"]["n"] == 2
    assert res["tasks"]["opinions"]["system2"]["calls_per_input"] == 2                # each task's own technique
    kept = {n: t["curation"]["kept"] for n, t in res["tasks"].items()}
    assert kept == {"addition": 3, "opinions": 3}
    assert res["joint"]["per_task"] == {"addition": 6, "opinions": 2}                  # weight 2: twice; 0.5: 2 of 3
    assert [n for _, n in fakes["trained_on"]] == [3, 3, 8]                            # two own models, one joint
    assert res["system1"]["n"] == res["distilled"]["n"] == 4                           # pooled over both test splits
    assert set(out.samples) == {"system1", "system2", "distilled"} and len(out.samples["distilled"]) == 4
    assert {"joint/train", "joint/evaluate/addition", "joint/evaluate/opinions", "addition/generate"} <= \
        set(res["stages"])

    again = run_multitask(cfg, tmp_path / "again", overrides, dt.datetime.now(), time.perf_counter()).results
    assert all(s["cached"] for s in again["stages"].values()), again["stages"]
    assert len(fakes["trained_on"]) == 3
    assert again["tasks"]["addition"]["joint"] == res["tasks"]["addition"]["joint"]
