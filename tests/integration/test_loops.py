"""Beyond the paper (s2d/loops/) on the real embedded SmolLM2-135M at tiny size: a two-task run with per-task and
joint rows, and the continuous loop whose rerun with one more round computes only that round."""
import pytest

from s2d.report import main as report
from tests.helpers.wandb_log import offline_summary
from tests.integration.conftest import TINY

pytestmark = pytest.mark.integration

def assert_drawn(png):
    """A real plot: a PNG of plot size with matplotlib's first colour (31, 119, 180) drawn in it."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200, pixels.shape
    blue = (np.abs(pixels - np.array([31, 119, 180])) < 25).all(axis=-1).sum()
    assert blue > 50, f"{png}: nothing drawn in the first colour"


# Two tasks, each with its own technique and filter; coin_flip weighs 2 (its curated set twice in the mix).
TASKS = ("tasks=[{task: last_letter, technique: rar_1step, filter: none, weight: 1,"
         " overrides: ['technique.steps.0.max_new_tokens=16']},"
         " {task: coin_flip, technique: cot, filter: none, weight: 2,"
         " overrides: ['technique.steps.0.max_new_tokens=16']}]")
ROUNDS = ["task=last_letter", "technique=rar_1step", "filter=none", "technique.steps.0.max_new_tokens=16", *TINY]


def test_two_tasks_give_per_task_rows_for_the_own_and_the_joint_model(s2d, tmp_path):
    _, res, run_dir = s2d(TASKS, *TINY)
    assert list(res["tasks"]) == ["last_letter", "coin_flip"]
    for name, technique in (("last_letter", "rar_1step"), ("coin_flip", "cot")):
        t = res["tasks"][name]
        assert t["technique"] == technique and t["filter"] == "none"
        for row in ("system1", "system2", "distilled", "joint"):   # a count of correct answers out of 4
            assert t[row]["n"] == 4 and t[row]["accuracy"] * 4 == round(t[row]["accuracy"] * 4), (name, row)
        assert t["joint_minus_distilled"] == pytest.approx(t["joint"]["accuracy"] - t["distilled"]["accuracy"])
        paired_diff = t["comparisons"]["joint - distilled"]                 # paired on the task's 4 test items
        assert paired_diff["n"] == 4 and paired_diff["delta"] == pytest.approx(t["joint_minus_distilled"])
    pooled_diff = res["comparisons"]["distilled - distilled_per_task"]     # joint - own over both tasks' items
    assert pooled_diff["n"] == 8 and res["distilled"]["ci95"][0] <= res["distilled"]["accuracy"]
    kept = {n: res["tasks"][n]["curation"]["kept"] for n in res["tasks"]}
    assert res["joint"]["per_task"] == {"last_letter": kept["last_letter"], "coin_flip": 2 * kept["coin_flip"]}
    assert res["distilled"]["n"] == res["system1"]["n"] == 8          # top level: both test splits pooled
    for row in ("system1", "distilled"):
        assert res[row]["accuracy"] == pytest.approx(sum(res["tasks"][n][row]["accuracy"] for n in res["tasks"]) / 2)
    assert res["run"]["task"] == "last_letter+coin_flip" and res["run"]["technique"] == "rar_1step+cot"
    assert {"joint/train", "joint/evaluate/last_letter", "joint/evaluate/coin_flip", "coin_flip/train"} <= \
        set(res["stages"])
    summary = offline_summary(run_dir)                                   # W&B: per-task keys
    assert summary["task/coin_flip/joint/accuracy"] == res["tasks"]["coin_flip"]["joint"]["accuracy"]

    # A task's own model is the single run's: that single run finds every stage in the cache.
    _, single, _ = s2d("task=coin_flip", "technique=cot", "filter=none", "technique.steps.0.max_new_tokens=16",
                       *TINY, "logger=none")
    assert all(s["cached"] for s in single["stages"].values()), single["stages"]
    assert single["distilled"] == res["tasks"]["coin_flip"]["distilled"]

    # The same multi-task run again: nothing recomputes.
    _, again, _ = s2d(TASKS, *TINY, "logger=none")
    assert all(s["cached"] for s in again["stages"].values()), again["stages"]
    for name, t in res["tasks"].items():
        assert {k: v for k, v in again["tasks"][name].items() if k != "stages"} == \
            {k: v for k, v in t.items() if k != "stages"}

    report([str(run_dir), "--out", str(tmp_path / "rep"), "--wandb", "disabled"])
    assert "## Per task" in (tmp_path / "rep" / "report.md").read_text()
    assert_drawn(tmp_path / "rep" / "tasks.png")


def test_two_rounds_then_a_third_computes_only_round_3(s2d, tmp_path):
    _, two, _ = s2d(*ROUNDS, "rounds=2", "logger=none")
    assert [r["round"] for r in two["rounds"]] == [1, 2]
    assert [r["pool"] for r in two["rounds"]] == [[0, 4], [4, 8]]                # fresh inputs each round
    assert two["rounds"][0]["model"] == "embedded:smollm2-135m-instruct"
    assert two["rounds"][1]["model"].startswith("merged:")                        # round 1's adapter, merged
    # The engine's swap merged round 1's adapter into the cache to score it; the next round's base reuses that copy.
    assert two["rounds"][1]["stages"]["merge"]["cached"] is True
    for r in two["rounds"]:
        assert r["system2"]["n"] == r["distilled"]["n"] == 4                      # the same test split
        assert r["stages"]["generate"]["generated"] == 4
    assert two["distilled"] == two["rounds"][1]["distilled"] and two["system1"] == two["rounds"][0]["system1"]
    gain = two["rounds"][1]["versus_round1"]["distilled"]                 # round 2's model vs the original model
    assert gain == two["comparisons"]["distilled - system1"] and gain["n"] == 4
    assert gain["delta"] == pytest.approx(two["distilled"]["accuracy"] - two["system1"]["accuracy"])

    # Round 1 is exactly the single run: the single run finds all of it in the cache.
    _, single, _ = s2d(*ROUNDS, "logger=none")
    assert all(s["cached"] for s in single["stages"].values()), single["stages"]
    assert single["distilled"] == two["rounds"][0]["distilled"]

    _, three, run_dir = s2d(*ROUNDS, "rounds=3")
    for old, new in zip(two["rounds"], three["rounds"][:2]):
        assert all(s["cached"] for s in new["stages"].values()), new["stages"]   # rounds 1-2: nothing redone
        assert new["stages"]["generate"]["generated"] == 0
        assert new["distilled"] == old["distilled"]
    r3 = three["rounds"][2]
    assert r3["round"] == 3 and r3["pool"] == [8, 12]
    assert r3["stages"]["generate"]["generated"] == 4 and not r3["stages"]["train"]["cached"]
    # Round 2's adapter was merged into the cache when the two-round run scored it: round 3's base reuses it.
    assert r3["stages"]["merge"]["cached"] and r3["model"].startswith("merged:")
    summary = offline_summary(run_dir)                                            # W&B: a round axis
    assert summary["round/3/distilled/accuracy"] == r3["distilled"]["accuracy"]

    report([str(run_dir), "--out", str(tmp_path / "rep"), "--wandb", "disabled"])
    assert "## Per round" in (tmp_path / "rep" / "report.md").read_text()
    assert_drawn(tmp_path / "rep" / "rounds.png")
