"""The loops' pure logic (s2d/loops/), no model: round pools, mixing by weight, result assembly, entry checks."""
import re
from collections import Counter

import pytest

from s2d.errors import UserError
from s2d.keys import input_digest
from s2d.loops import check_entries, wanted
from s2d.loops.continuous import assemble_rounds, check_round_data, round_pool, versus_round1
from s2d.loops.multitask import (
    assemble_multitask,
    compose_entry,
    entry_overrides,
    mix,
    pooled,
    pooled_curation,
    pooled_samples,
    task_entries,
)
from s2d.pipeline import prepare
from s2d.registry import build
from s2d.results import comparisons, format_table
from s2d.stats import accuracy_interval, paired
from s2d.tracking import loop_summary
from tests.test_config import _compose

GROUPS = {"task": ["addition", "addition_sycophancy", "coin_flip", "last_letter"],
          "technique": ["cot", "rar_1step", "s2a", "system1"], "filter": ["majority", "none"]}


def test_round_k_reads_the_kth_slice_of_the_pool():
    assert [round_pool(k, 4) for k in (1, 2, 3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]


@pytest.mark.parametrize("task", ["addition_sycophancy", "addition", "last_letter", "coin_flip"])
def test_rounds_see_the_same_test_split_and_fresh_disjoint_pools(task):
    """What the continuous loop relies on: a larger train_size keeps the test split and the pool's prefix."""
    t = build("task", _compose([f"task={task}"]).task)
    size, test_size = 4, 6
    first_train, first_test = t.splits(0, size, test_size)
    seen = set()
    for k in (1, 2, 3):
        train, test = t.splits(0, k * size, test_size)
        assert test == first_test
        pool = train[round_pool(k, size)]
        assert len(pool) == size and pool == t.splits(0, 3 * size, test_size)[0][round_pool(k, size)]
        hashes = {input_digest(i) for i in pool}
        assert not hashes & seen
        seen |= hashes
    assert t.splits(0, 3 * size, test_size)[0][:size] == first_train


def test_round_data_checks_are_one_line_each():
    test = [("test-0", "a")]
    check_round_data("t", 2, test, test, [("train-4", "x")], 1, {"y"})
    with pytest.raises(UserError, match="test split changes"):
        check_round_data("t", 2, [("test-0", "b")], test, [("train-4", "x")], 1, set())
    with pytest.raises(UserError, match="round 2 needs unlabeled inputs 2..3, the task has 3"):
        check_round_data("t", 2, test, test, [("train-2", "x")], 2, set())
    with pytest.raises(UserError, match="repeat 1 input"):
        check_round_data("t", 2, test, test, [("train-4", "x")], 1, {"x"})


def _cfg(tmp_path, *overrides):
    return _compose(["task=addition_sycophancy", "technique=s2a", f"paths.cache_dir={tmp_path}",
                     "data.train_size=4", "data.test_size=3", *overrides])


def test_a_round_context_has_its_base_its_pool_slice_and_round_1_is_the_single_run(tmp_path):
    cfg = _cfg(tmp_path)
    single = prepare(cfg, tmp_path / "run", base=("/models/base", None))
    round1 = prepare(cfg, tmp_path / "r1", base=("/models/base", None), pool=round_pool(1, 4))
    assert single.pool_payload == round1.pool_payload
    assert single.model_identity == round1.model_identity
    assert [i.id for i in round1.train_items] == [i.id for i in single.train_items] == [f"train-{i}" for i in range(4)]
    round2 = prepare(cfg, tmp_path / "r2", base=("/cache/merged/abc", "merged:abc"), pool=round_pool(2, 4))
    assert round2.model_identity["path"] == "merged:abc" and round2.model_path == "/cache/merged/abc"
    assert round2.pool_payload["model"]["path"] == "merged:abc"
    assert [i.id for i in round2.train_items] == [f"train-{i}" for i in range(4, 8)]
    assert round2.test_items == single.test_items


def test_mix_repeats_whole_weights_samples_fractions_and_is_seeded():
    sets = {"a": [{"id": f"a{i}"} for i in range(4)], "b": [{"id": f"b{i}"} for i in range(6)],
            "c": [{"id": "c0"}]}
    mixed = mix(sets, {"a": 2.0, "b": 0.5, "c": 0.0}, seed=0)
    assert Counter(e["task"] for e in mixed) == {"a": 8, "b": 3}
    assert Counter(e["id"] for e in mixed if e["task"] == "a") == {f"a{i}": 2 for i in range(4)}
    assert len({e["id"] for e in mixed if e["task"] == "b"}) == 3        # a sample without repeats
    assert mix(sets, {"a": 2.0, "b": 0.5, "c": 0.0}, seed=0) == mixed    # same seed, same mix
    assert mix(sets, {"a": 2.0, "b": 0.5, "c": 0.0}, seed=1) != mixed
    assert "task" not in sets["a"][0]                                    # the curated sets are not modified


def test_pooled_rows_weight_each_task_by_its_items():
    rows = [{"accuracy": 1.0, "tokens_per_input": 10.0, "n": 1, "unparsed": 0, "calls_per_input": 1.0},
            {"accuracy": 0.25, "tokens_per_input": 30.0, "n": 3, "unparsed": 2, "calls_per_input": 2.0}]
    p = pooled(rows)
    assert p["accuracy"] == pytest.approx(0.4375) and p["tokens_per_input"] == pytest.approx(25.0)
    assert p["n"] == 4 and p["unparsed"] == 2 and p["calls_per_input"] == pytest.approx(1.75) and p["tasks"] == 2
    assert p["ci95"] == accuracy_interval(2, 4)   # 1 of 1 right plus 1 of 3 (0.25 x 4 = 1)
    c = pooled_curation([
        {"inputs": 4, "samples_per_input": 3, "kept": 2, "target_accuracy": 1.0, "filter": "majority"},
        {"inputs": 4, "samples_per_input": 1, "kept": 2, "target_accuracy": 0.5, "filter": "none"}])
    assert (c["inputs"], c["kept"], c["kept_fraction"], c["target_accuracy"]) == (8, 4, 0.5, 0.75)
    assert c["samples_per_input"] == "1+3" and c["filter"] == "majority+none"


@pytest.mark.parametrize("tasks,needle", [
    ([{"task": "nope", "technique": "cot", "filter": "none"}],
     "unknown task (tasks[0].task) 'nope'; valid choices: addition, addition_sycophancy, coin_flip, last_letter"),
    ([{"task": "addition", "technique": "cot", "filter": "none", "wieght": 1}], "unknown key in tasks[0] 'wieght'"),
    ([{"task": "addition", "filter": "none"}], "tasks[0] needs a technique"),
    ([{"task": "addition", "technique": "cot", "filter": "none", "weight": -1}], "bad tasks[0].weight=-1"),
    ([{"task": "addition", "technique": "cot", "filter": "none", "overrides": ["training.epochs=1"]}],
     "sets 'training.epochs'; an entry sets keys under task., technique. or filter. only"),
    ([{"task": "addition", "technique": "cot", "filter": "none"}] * 2, "two entries are named 'addition'"),
    ([{"task": "addition", "technique": "cot", "filter": "none", "weight": 0}], "every weight is 0"),
])
def test_bad_task_entries_are_one_line(tasks, needle):
    with pytest.raises(UserError) as e:
        task_entries(tasks, GROUPS)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_an_entry_is_the_run_with_its_own_task_technique_filter_and_overrides():
    [entry] = task_entries([{"task": "addition", "technique": "cot", "filter": "none", "weight": 2,
                             "overrides": ["technique.steps.0.max_new_tokens=8"]}], GROUPS)
    assert entry == {"name": "addition", "task": "addition", "technique": "cot", "filter": "none", "weight": 2.0,
                     "overrides": ["technique.steps.0.max_new_tokens=8"]}
    run = ["experiment=multitask", "task=last_letter", "technique=s2a", "filter=majority", "tasks=[{task:x}]",
           "rounds=1", "data.train_size=4", "filter.samples_per_input=2"]
    args = entry_overrides(run, entry)
    assert args == ["experiment=multitask", "data.train_size=4", "filter.samples_per_input=2", "task=addition",
                    "technique=cot", "filter=none", "tasks=[]", "technique.steps.0.max_new_tokens=8"]
    cfg = compose_entry(args)
    assert (cfg.task.name, cfg.technique.name, cfg.filter.name) == ("addition", "cot", "none")
    assert cfg.technique.steps[0].max_new_tokens == 8 and cfg.data.train_size == 4 and list(cfg.tasks) == []
    assert cfg.model.name == "qwen2.5-coder-0.5b-instruct"   # the experiment's model, shared by every entry


def test_the_shipped_experiments_pass_the_entry_checks_and_a_typo_in_an_entry_is_caught():
    check_entries(["experiment=multitask"])
    check_entries(["experiment=continuous", "rounds=4"])
    with pytest.raises(UserError, match="unknown config key 'technique.nope'"):
        check_entries(["tasks=[{task:addition,technique:cot,filter:none,overrides:['technique.nope=3']}]"])
    with pytest.raises(UserError, match=re.escape("unknown technique (tasks[0].technique) 'cto'")):
        check_entries(["tasks=[{task:addition,technique:cto,filter:none}]"])
    with pytest.raises(UserError, match="bad rounds=0"):
        check_entries(["rounds=0"])
    with pytest.raises(UserError, match="not supported"):
        check_entries(["experiment=multitask", "rounds=2"])
    assert not wanted(_compose([])) and wanted(_compose(["rounds=2"])) and wanted(_compose(["experiment=multitask"]))


def _row(acc, tok=10.0, n=4):
    return {"accuracy": acc, "tokens_per_input": tok, "n": n, "unparsed": 0}


def _curation(kept, inputs=4):
    return {"inputs": inputs, "samples_per_input": 2, "kept": kept, "kept_fraction": kept / inputs,
            "target_accuracy": 0.5, "filter": "majority", "uses_gold_labels": False}


def _round(k, acc):
    return {"round": k, "model": "embedded:x" if k == 1 else f"merged:{k}", "pool": [4 * (k - 1), 4 * k],
            "system1": _row(0.1 * k), "system2": _row(acc, 40.0), "distilled": _row(acc, 8.0), "variants": {},
            "curation": _curation(k), "ablations": {}, "broad": {},
            "stages": {"generate": {"cached": k < 3, "wall_s": 1.0}}}


def test_a_continuous_run_reads_system1_from_round_1_and_the_rest_from_the_last_round():
    entries = [_round(1, 0.5), _round(2, 0.75)]
    out = assemble_rounds(entries)
    assert out["system1"] == entries[0]["system1"] and out["distilled"] == entries[1]["distilled"]
    assert out["curation"] == entries[1]["curation"]
    assert out["stages"] == {"round1/generate": entries[0]["stages"]["generate"],
                             "round2/generate": entries[1]["stages"]["generate"]}
    results = {"run": {"task": "t", "model": "m", "filter": "majority", "training": "lora", "seed": 0,
                       "technique": "s2a"}, **out, "rounds": entries}
    summary = loop_summary(results)
    assert summary["round/2/distilled/accuracy"] == 0.75 and summary["round/1/curation/kept_fraction"] == 0.25
    table = format_table(results)
    assert "round  S2 acc" in table and "    2   75.0%" in table


def test_a_multitask_run_keeps_per_task_rows_and_pools_the_joint_model():
    entries = task_entries([{"task": "addition", "technique": "cot", "filter": "majority", "weight": 2},
                            {"task": "last_letter", "technique": "rar_1step", "filter": "majority"}], GROUPS)
    task_blocks = {name: {"system1": _row(0.25), "system2": _row(0.5, 50.0), "distilled": _row(acc),
                          "curation": _curation(2), "ablations": {}, "variants": {},
                          "stages": {"train": {"cached": False, "wall_s": 2.0}}}
                   for name, acc in (("addition", 0.75), ("last_letter", 0.5))}
    joint = {"addition": _row(0.5), "last_letter": _row(0.75)}
    out = assemble_multitask(entries, task_blocks, joint, {"addition": 4, "last_letter": 2}, {},
                             {"train": {"cached": False, "wall_s": 3.0}})
    assert out["tasks"]["addition"]["joint_minus_distilled"] == pytest.approx(-0.25)     # interference
    assert out["tasks"]["last_letter"]["joint_minus_distilled"] == pytest.approx(0.25)   # transfer
    assert out["distilled"]["accuracy"] == pytest.approx(0.625) and out["distilled_per_task"]["accuracy"] == 0.625
    assert out["joint"] == {"examples": 6, "per_task": {"addition": 4, "last_letter": 2},
                            "weights": {"addition": 2.0, "last_letter": 1.0}}
    assert set(out["stages"]) == {"addition/train", "last_letter/train", "joint/train"}
    results = {"run": {"task": "addition+last_letter", "model": "m", "filter": "majority+majority", "training": "lora",
                       "seed": 0, "technique": "cot+rar_1step"}, **out}
    assert loop_summary(results)["task/last_letter/joint/accuracy"] == 0.75
    assert "last_letter" in format_table(results) and "+25.0%" in format_table(results)


def _samples(right: str, prefix: str = "i") -> list[dict]:
    """Evaluation samples from a string of 1 (right) / 0 (wrong) per test item."""
    return [{"id": f"{prefix}{k}", "correct": c == "1"} for k, c in enumerate(right)]


def test_every_round_is_paired_with_round_1s_system1_and_prints_its_interval():
    first = {"system1": _samples("0000111100"), "distilled": _samples("1100111100")}
    later = {"system1": _samples("1100111100"), "system2": _samples("1111111100"), "distilled": _samples("1111111110")}
    gained = versus_round1(first, later)
    assert gained["distilled"] == paired({f"i{k}": int(c) for k, c in enumerate("0000111100")},
                                         {f"i{k}": int(c) for k, c in enumerate("1111111110")})
    assert gained["distilled"]["b_only"] == 5 and gained["distilled"]["a_only"] == 0
    entries = [{**_round(1, 0.6), "versus_round1": versus_round1(first, first)},
               {**_round(2, 0.9), "versus_round1": gained}]
    entries[1]["distilled"]["ci95"] = accuracy_interval(9, 10)
    out = assemble_rounds(entries, comparisons({**later, "system1": first["system1"]}))
    assert out["comparisons"]["distilled - system1"] == gained["distilled"]   # the last round vs the original model
    table = format_table({"run": {"task": "t", "model": "m", "filter": "majority", "training": "lora", "seed": 0,
                                  "technique": "s2a"}, **out, "rounds": entries})
    row = next(line for line in table.splitlines() if line.startswith("    2"))
    lo, hi = accuracy_interval(9, 10)
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}]" in row and "+50.0 [" in row and "p=0.062" in row   # 5 vs 0: 2/32
    summary = loop_summary({"rounds": entries})
    assert summary["round/2/versus_round1/distilled/ci95_low"] == gained["distilled"]["ci95"][0]


def test_a_multitask_run_pairs_the_joint_model_with_each_tasks_own_model_and_pools_the_pairs():
    entries = task_entries([{"task": "addition", "technique": "cot", "filter": "majority"},
                            {"task": "last_letter", "technique": "rar_1step", "filter": "majority"}], GROUPS)
    samples = {"addition": {"system1": _samples("0011"), "system2": _samples("1111"), "distilled": _samples("1111"),
                            "joint": _samples("0111")},
               "last_letter": {"system1": _samples("0000"), "system2": _samples("1110"), "distilled": _samples("1000"),
                               "joint": _samples("1100")}}
    task_blocks = {n: {"system1": _row(0.5), "system2": _row(1.0), "distilled": _row(1.0), "curation": _curation(2),
                       "ablations": {}, "variants": {}, "comparisons": {"distilled - system1": {"delta": 0.5}},
                       "stages": {}} for n in samples}
    out = assemble_multitask(entries, task_blocks, {"addition": _row(0.75), "last_letter": _row(0.5)},
                             {"addition": 2, "last_letter": 2}, {}, {}, samples)
    addition = out["tasks"]["addition"]["comparisons"]
    assert addition["distilled - system1"] == {"delta": 0.5}                  # the task's own block, kept
    assert (addition["joint - distilled"]["a_only"], addition["joint - distilled"]["b_only"]) == (1, 0)
    assert out["tasks"]["last_letter"]["comparisons"]["joint - system1"]["b_only"] == 2
    pooled_rows = pooled_samples(samples)
    assert [s["id"] for s in pooled_rows["distilled"]][:5] == ["addition/i0", "addition/i1", "addition/i2",
                                                              "addition/i3", "last_letter/i0"]
    joint_vs_own = out["comparisons"]["distilled - distilled_per_task"]   # pooled: 1 lost on addition, 1 won
    assert (joint_vs_own["n"], joint_vs_own["b_only"], joint_vs_own["a_only"], joint_vs_own["delta"]) == (8, 1, 1, 0)
    assert out["comparisons"]["distilled - system1"]["b_only"] == 3
    table = format_table({"run": {"task": "a+b", "model": "m", "filter": "majority+majority", "training": "lora",
                                  "seed": 0, "technique": "cot+rar_1step"}, **out})
    assert "joint - own: points [95%]" in table and "-25.0 [" in table
    assert "distilled - distilled_per_task: +0.0 [" in table


def test_the_row_views_flatten_to_their_columns_for_every_consumer():
    """s2d.loop_rows reads a round and a task block once; W&B's columns line up with the flattened values,
    with and without a paired comparison (a task block from before the pairing has only the plain difference)."""
    from s2d.loop_rows import ROUND_COLUMNS, TASK_COLUMNS, flat, round_view, task_view
    first, later = _samples("0000111100"), _samples("1111111110")
    r = {**_round(2, 0.9), "versus_round1": versus_round1({"system1": first}, {"distilled": later})}
    r["distilled"]["ci95"] = accuracy_interval(9, 10)
    values = dict(zip(ROUND_COLUMNS, flat(round_view(r))))
    assert len(flat(round_view(r))) == len(ROUND_COLUMNS)
    assert values["distilled_vs_round1"] == pytest.approx(0.5)                 # 5 items gained, none lost
    assert values["distilled_vs_round1_p"] == pytest.approx(1 / 16)
    assert (values["distilled_ci95_low"], values["distilled_ci95_high"]) == tuple(accuracy_interval(9, 10))
    assert values["cached"] is True and dict(zip(ROUND_COLUMNS, flat(round_view(_round(3, 0.5)))))["cached"] is False
    task = {"technique": "cot", "filter": "majority", "weight": 1.0, "system1": _row(0.25), "system2": _row(0.5),
            "distilled": _row(0.75), "joint": _row(0.5), "joint_minus_distilled": -0.25}
    plain = dict(zip(TASK_COLUMNS, flat(task_view("addition", task))))
    assert plain["joint_minus_distilled"] == -0.25 and plain["joint_minus_distilled_p"] is None
