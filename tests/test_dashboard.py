"""The group's W&B workspace specification (s2d/dashboard.py), built offline: every panel reads a key s2d's runs
log (s2d/tracking.py), the runs are the group's."""
import json

from s2d.dashboard import ROWS, SCATTER_PRESET, STAGES, TRAINING_CURVES, workspace
from s2d.report import main as report_main
from s2d.tracking import RESULT_COLUMNS, flatten


def _spec(**kw):
    return workspace("me", "s2d", "demo", ["arc_easy", "piqa"], **kw)._to_model().model_dump(by_alias=True,
                                                                                              exclude_none=True)


def test_the_workspace_shows_the_groups_rows_broad_deltas_training_curves_and_tables():
    spec = _spec()
    text = json.dumps(spec)
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    assert [s["name"] for s in sections] == ["Accuracy vs tokens", "Rows with intervals", "Broad benchmarks",
                                             "Training", "Stages and samples"]
    assert spec["displayName"] == "s2d: demo" and '"group"' in text and '"demo"' in text   # the group's runs only
    scatter = sections[0]["panels"][0]["config"]
    assert scatter["panelDefId"] == SCATTER_PRESET and scatter["fieldSettings"]["color"] == "row"
    assert '"tableKey", "value": "results"' in text
    for field in ("tokens_per_input", "accuracy", "row"):
        assert field in RESULT_COLUMNS                     # what the merged results tables hold
    for key in [f"summary:{r}/accuracy" for r in ROWS] + ["summary_metrics.broad/piqa/delta",
                                                          "summary_metrics.comparisons/distilled - system1/ci95_low"]:
        assert key in text, key   # W&B's own encodings: scatter axes `summary:`, bar metrics `summary_metrics.`
    for curve in TRAINING_CURVES:
        assert curve in text
    for stage in STAGES:
        assert f"stages/{stage}/wall_s" in text


def test_the_summary_keys_the_panels_read_are_what_a_job_logs():
    results = json.loads(open("experiments/embedded_demo/results/demo/seed0_rerun.json").read())
    logged = set(flatten({k: v for k, v in results.items() if k != "run"}))
    for row in ("system1", "system2", "distilled"):
        assert {f"{row}/accuracy", f"{row}/tokens_per_input", f"{row}/ci95_low"} <= logged
    assert {"comparisons/distilled - system1/delta", "broad/piqa/delta"} <= logged


def test_the_report_writes_the_workspace_specification(tmp_path):
    run = json.loads(open("experiments/embedded_demo/results/demo/seed0_rerun.json").read())
    run["run"]["wandb"] = {"project": "s2d", "entity": None, "group": "demo", "id": "x", "mode": "offline"}
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "results.json").write_text(json.dumps(run))
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--wandb", "offline"])
    spec = json.loads((tmp_path / "rep" / "wandb_workspace.json").read_text())
    assert spec["displayName"] == "s2d: demo" and "summary_metrics.broad/lambada/delta" in json.dumps(spec)
