import json

import pytest

from s2d.report import main, pareto_front
from s2d.results import difference_text
from s2d.stats import accuracy_interval, paired


def _results(acc, broad_delta=None):
    row = {"accuracy": acc, "tokens_per_input": 10.0, "n": 4, "unparsed": 0}
    broad = {} if broad_delta is None else {
        "arc_easy": {"base": 0.5, "distilled": 0.5 + broad_delta, "delta": broad_delta, "ci95": [-0.3, -0.1],
                     "p_holm": 0.01, "verdict": "regressed" if broad_delta < -0.02 else "held",
                     "regressed": broad_delta < -0.02}}
    return {"run": {"task": "last_letter", "technique": "cot", "filter": "majority", "training": "lora", "seed": 0},
            "system1": row, "system2": {**row, "tokens_per_input": 100.0}, "distilled": row,
            "curation": {"kept": 3, "inputs": 4, "kept_fraction": 0.75, "uses_gold_labels": False},
            "broad": broad}


def test_pareto_front_keeps_only_undominated_points():
    points = [(10, 0.2), (100, 0.6), (20, 0.1), (50, 0.6), (5, 0.0), (200, 0.9)]
    assert pareto_front(points) == [(5, 0.0), (10, 0.2), (50, 0.6), (200, 0.9)]


def test_report_writes_md_html_png_one_row_per_run(tmp_path, capsys):
    for i, (acc, delta) in enumerate([(0.25, None), (0.5, -0.2)]):
        d = tmp_path / "multirun" / f"{i}_job"
        d.mkdir(parents=True)
        r = _results(acc, delta)
        r["run"]["name"] = "twin"   # two runs of one name: told apart by their folders
        if i == 1:   # the filter ablations of the same run: their distilled accuracy in a column of its own
            r["ablations"] = {"none": {"distilled": {"accuracy": 0.125}}, "gold": {"distilled": {"accuracy": 0.875}}}
        (d / "results.json").write_text(json.dumps(r))
    (tmp_path / "multirun" / "2_job").mkdir()
    (tmp_path / "multirun" / "2_job" / "failed.json").write_text(json.dumps({"error": "UserError: bad"}))
    main([str(tmp_path / "multirun"), "--out", str(tmp_path / "rep"), "--wandb", "disabled"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| twin (0_job) |" in md and "| twin (1_job) |" in md and "50.0%" in md and "75.0%" in md
    assert "| none 12.5%, gold 87.5% |" in md
    assert "| regressed: arc_easy |" in md and "2_job" in md   # the regression named, the failed job listed
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("<tr class='run'>") == 2 and "data:image/png;base64," in page
    assert (tmp_path / "rep" / "accuracy_vs_tokens.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_token_axis_is_labelled_in_plain_numbers_around_every_point():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from s2d.report import plain_log_ticks
    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.scatter([11.6, 14.3, 39.2], [0.85, 0.675, 0.915])
    plain_log_ticks(ax.xaxis, [11.6, 14.3, 39.2])
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["10", "15", "20", "30", "50"]   # not 2 x 10^1; the distilled point at 11.6 has 10 below it
    assert ax.get_xlim() == (10, 50)
    plt.close(fig)


def test_report_on_a_missing_path_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no such path"):
        main([str(tmp_path / "nope")])


def test_report_logs_one_summary_wandb_run_in_the_sweep_group(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    for i in range(2):
        d = tmp_path / "sweep" / f"{i}_job"
        d.mkdir(parents=True)
        r = _results(0.5, broad_delta=-0.1)   # every block the table holds, comparisons and verdicts included
        r["comparisons"] = {"distilled - system1": {"delta": 0.1, "ci95": [0.0, 0.2], "p": 0.04}}
        r["run"]["wandb"] = {"project": "s2d-test", "group": "my-sweep", "id": f"id{i}", "mode": "offline"}
        (d / "results.json").write_text(json.dumps(r))
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "rep"), "--wandb", "offline"])
    # What the CLI's exit does: W&B's service (here the pytest process's, shared by every test) writes the
    # offline log behind run.finish(); under a loaded CPU the log was read before its records were on disk.
    import wandb
    wandb.teardown()
    logs = list((tmp_path / "rep").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    from wandb.proto import wandb_internal_pb2

    from tests.helpers.wandb_log import raw_records
    runs = []
    for raw in raw_records(logs[0]):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "run":
            runs.append(rec.run)
    assert runs and runs[0].run_group == "my-sweep" and runs[0].job_type == "report"


def test_report_draws_per_round_and_per_task_panels(tmp_path):
    from tests.test_loops import _curation, _round, _row
    rounds = _results(0.75)
    rounds["rounds"] = [_round(1, 0.5), _round(2, 0.75)]
    rounds["rounds"][1]["distilled"]["ci95"] = accuracy_interval(3, 4)
    rounds["rounds"][1]["versus_round1"] = {"distilled": paired({"a": 0, "b": 0, "c": 1, "d": 0},
                                                                {"a": 1, "b": 1, "c": 1, "d": 0})}
    multi = _results(0.5)
    multi["tasks"] = {"addition": {"technique": "cot", "filter": "majority", "weight": 1.0, "system1": _row(0.25),
                                   "system2": _row(0.5), "distilled": _row(0.75), "joint": _row(0.5),
                                   "joint_minus_distilled": -0.25, "curation": _curation(2),
                                   "comparisons": {"joint - distilled": paired({"a": 1, "b": 1, "c": 1, "d": 0},
                                                                               {"a": 1, "b": 0, "c": 1, "d": 0})}}}
    for name, r in (("continuous", rounds), ("multitask", multi)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "results.json").write_text(json.dumps(r))
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--wandb", "disabled"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Per round" in md
    lo, hi = accuracy_interval(3, 4)
    gain = difference_text(rounds["rounds"][1]["versus_round1"]["distilled"])
    assert gain.startswith("+50.0 [") and gain.endswith("p=0.500")          # 2 items won, none lost: 2 x 1/4
    assert (f"| continuous | 2 | 20.0% | 75.0% | 40.0 | 75.0% [{100 * lo:.1f}, {100 * hi:.1f}] | 8.0 | {gain} | "
            "50.0% | 50.0% | yes |") in md
    assert "| continuous | 1 | 10.0% | 50.0% | 40.0 | 50.0% | 8.0 | n/a |" in md   # an older round: no pairing
    assert "## Per task" in md
    loss = difference_text(multi["tasks"]["addition"]["comparisons"]["joint - distilled"])
    assert loss.startswith("-25.0 [") and loss.endswith("p=1.000")
    assert f"| multitask | addition | cot | majority | 1 | 25.0% | 50.0% | 75.0% | 50.0% | {loss} |" in md
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "id='rounds'" in page and "id='tasks-plot'" in page
    for png in ("rounds.png", "tasks.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
