"""Every experiment config runs at tiny size on the real embedded model (its first sweep point, single run),
then reruns fully cached."""
import json

import pytest

from s2d.config_tree import config_groups
from tests.test_config import _compose

pytestmark = pytest.mark.integration

TINY = ["data.train_size=2", "data.test_size=2", "eval.max_new_tokens=8", "training.max_steps=1",
        "backend.batch_size=8", "logger=none"]
# Generation budgets cut to a few tokens per call, and the broad block to two benchmarks of 2 items (one scored by
# log-likelihood, one generated; every shipped benchmark loads in test_broad.py); the experiments' own choices are
# otherwise untouched.
DEMO_SHORT = ["technique.steps.0.max_new_tokens=8", "technique.steps.1.max_new_tokens=8", "filter.samples_per_input=2",
              "benchmarks.limit=2", "benchmarks.tasks=[arc_easy,triviaqa]"]
SHORT = {
    "demo": DEMO_SHORT,
    "demo_full": DEMO_SHORT,
    "paper_table1": ["technique.steps.0.max_new_tokens=8", "filter.samples_per_input=2"],
    "paper_table7": ["technique.steps.0.max_new_tokens=8", "filter.samples_per_input=2"],
    "paper_table2": ["technique.steps.0.max_new_tokens=16", "technique.steps.1.max_new_tokens=8",
                     "filter.samples_per_input=2", "filter.fallback_sizes=[2,1]", "filter.max_new_tokens=8"],
    "paper_table3": ["technique.max_criteria=1", "technique.branch.max_new_tokens=16",
                     "technique.solve.max_new_tokens=6", "technique.merge_llm.max_new_tokens=8",
                     "task.answer_max_new_tokens=8", "data.test_size=1"],
    "paper_table4": ["technique.steps.0.max_new_tokens=16", "filter.samples_per_input=2", "eval.votes=[1,2]",
                     "task.fewshot_k=1"],
    # The loops on SmolLM2: their logic is not the model's (only the demo's key is pinned to Qwen); Qwen-0.5B
    # costs ~4x per call here.
    "continuous": ["model=smollm2_135m", "technique.steps.0.max_new_tokens=8", "technique.steps.1.max_new_tokens=8",
                   "filter.samples_per_input=2", "rounds=2"],
    # Each entry's generation budget cut in its own overrides (one run-wide override cannot fit S2A's two steps
    # and CoT's one); weights, tasks, techniques and filters as in the experiment file.
    "multitask": ["tasks=[{task: addition_sycophancy, technique: s2a, filter: majority, weight: 1.0, overrides: "
                  "['technique.steps.0.max_new_tokens=8', 'technique.steps.1.max_new_tokens=8']}, "
                  "{task: addition, technique: cot, filter: majority, weight: 1.0, overrides: "
                  "['technique.steps.0.max_new_tokens=8']}]",
                  "filter.samples_per_input=2", "benchmarks.limit=2", "benchmarks.tasks=[arc_easy,triviaqa]",
                  "model=smollm2_135m"],
}
EXPERIMENTS = sorted(config_groups()["experiment"])
# `make demo`'s run is `make reproduce`'s without the ablations: it runs after demo_full in the same cache, so every
# row it has comes from there (also a check that a first look's results are the reproduction's).
SUBSET_OF = {"demo": "demo_full"}


def test_every_experiment_has_a_tiny_setting():
    assert sorted(SHORT) == EXPERIMENTS and set(SUBSET_OF.values()) <= set(EXPERIMENTS)


ROWS = ("system1", "system2", "distilled", "curation", "ablations", "broad", "variants")


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e not in SUBSET_OF])
def test_experiment_runs_tiny_and_reruns_fully_cached(s2d, tmp_path, experiment):
    _, results, _ = s2d(f"experiment={experiment}", *TINY, *SHORT[experiment])
    # The same command again: every stage comes from the cache (the keys are stable) with the same numbers.
    s2d(f"experiment={experiment}", *TINY, *SHORT[experiment], "hydra.run.dir=rerun")
    again = json.loads((tmp_path / "rerun" / "results.json").read_text())
    assert {name: s["cached"] for name, s in again["stages"].items()} == {name: True for name in results["stages"]}
    assert {k: again[k] for k in ROWS} == {k: results[k] for k in ROWS}
    cfg = _compose([f"experiment={experiment}", *TINY, *SHORT[experiment]])
    assert results["run"]["name"] == cfg.name and results["run"]["model"] == cfg.model.name
    # Every row scored the whole test split (both orders of each pair for the judge task; every task's split,
    # pooled, for a multi-task run) and its accuracy is a count of correct answers over it.
    tasks = len(cfg.tasks) if cfg.get("tasks") else 1
    n = int(cfg.data.test_size) * (2 if cfg.task.name == "mtbench_judge" else 1) * tasks
    for row in ("system1", "system2", "distilled"):
        assert results[row]["n"] == n, (row, results[row]["n"], n)
        assert results[row]["accuracy"] * n == pytest.approx(round(results[row]["accuracy"] * n)), row
        assert results[row]["tokens_per_input"] > 0, row
    if experiment == "demo_full":   # the reproduction shows what label-free curation buys (none and gold rows,
        assert set(results["ablations"]) == {"none", "gold"}        # same run), the opinion groups apart, and the
        assert results["ablations"]["gold"]["curation"]["uses_gold_labels"]   # broad block
        assert {"accuracy_unbiased", "accuracy_biased_correct", "opinion_rate"} <= set(results["distilled"])
        assert results["broad"] and results["run"]["data_seed"] == 0
    for subset in [name for name, superset in SUBSET_OF.items() if superset == experiment]:
        s2d(f"experiment={subset}", *TINY, *SHORT[subset], f"hydra.run.dir={subset}")
        first = json.loads((tmp_path / subset / "results.json").read_text())
        assert all(stage["cached"] for stage in first["stages"].values()), (subset, first["stages"])
        assert {k: first[k] for k in ("system1", "system2", "distilled", "curation", "broad")} == \
            {k: results[k] for k in ("system1", "system2", "distilled", "curation", "broad")}
        assert not first.get("ablations")
    if experiment == "continuous":
        assert [r["round"] for r in results["rounds"]] == [1, 2]
    if experiment == "multitask":
        assert set(results["tasks"]) == {"addition_sycophancy", "addition"} and results["broad"]
        for t in results["tasks"].values():   # the joint model scored on each task's own split
            assert t["joint"]["n"] == t["distilled"]["n"] == 2
            assert t["joint_minus_distilled"] == pytest.approx(t["joint"]["accuracy"] - t["distilled"]["accuracy"])
