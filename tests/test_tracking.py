"""s2d/tracking.py on the real W&B client (offline): a logging or finishing failure is one warning line, never the
run's end, and results.json (written before logging) stands."""
import wandb

from s2d.stats import accuracy_interval, paired
from s2d.tracking import RESULT_COLUMNS, SAMPLE_COLUMNS, Tracker, results_rows, sample_rows
from tests.test_config import _compose


def test_a_wandb_failure_is_one_warning_line_not_the_runs_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = Tracker(_compose(["logger=wandb", "logger.mode=offline"]), tmp_path)
    assert tracker.run is not None and tracker.info["mode"] == "offline"
    run = tracker.run
    results = {"run": {}, "system1": {"accuracy": 0.5, "n": 2}, "curation": {"kept": 1},
               "stages": {"curate": {"key": "k1", "cached": False}}}
    samples = {"system1": [], "system2": [], "distilled": []}
    # A real failure of the client: the distillation set's file is gone when its artifact is built.
    tracker.log_results(results, samples, [], str(tmp_path / "removed_distill_set.jsonl"))
    out = capsys.readouterr().out
    [line] = [text for text in out.splitlines() if "WARNING" in text]
    assert line.startswith("[s2d] WARNING: W&B logging failed (") and line.endswith("results.json is complete"), out
    assert run.summary["system1/accuracy"] == 0.5          # what was logged before the failure stays logged

    def refuse(*args, **kwargs):
        raise wandb.errors.CommError("connection reset by peer")
    real_finish = run.finish
    monkeypatch.setattr(run, "finish", refuse)
    tracker.finish(exit_code=0)                             # no exception reaches the caller
    out = capsys.readouterr().out
    assert "[s2d] WARNING: W&B could not finish the run (CommError: connection reset by peer); its local files " \
           f"are in {run.dir}" in out
    assert tracker.run is None
    real_finish()


def _row(correct: int, n: int, tokens: float) -> dict:
    return {"accuracy": correct / n, "ci95": accuracy_interval(correct, n), "tokens_per_input": tokens, "n": n}


def test_results_in_long_format_one_line_per_scored_row_with_its_interval_and_difference():
    s1, d = {"a": 0, "b": 1, "c": 0, "d": 0}, {"a": 1, "b": 1, "c": 1, "d": 0}
    results = {"run": {"name": "job0", "task": "t", "model": "m", "technique": "s2a", "filter": "majority",
                       "training": "lora", "seed": 3},
               "system1": _row(1, 4, 10.0), "system2": _row(3, 4, 40.0), "distilled": _row(3, 4, 9.0),
               "ablations": {"none": {"distilled": _row(2, 4, 8.0)}}, "variants": {},
               "comparisons": {"distilled - system1": paired(s1, d), "distilled - system2": paired(d, s1)}}
    rows = [dict(zip(RESULT_COLUMNS, r)) for r in results_rows(results, group="g")]
    assert [(r["row"], r["arm"], r["filter"]) for r in rows] == [
        ("system1", "system1", "majority"), ("system2", "system2", "majority"),
        ("distilled", "distilled", "majority"), ("distilled[none]", "distilled", "none")]
    for r in rows:   # each line is results.json's row, as it is
        block = results[r["row"]] if "[" not in r["row"] else results["ablations"]["none"]["distilled"]
        assert (r["accuracy"], [r["ci95_low"], r["ci95_high"]], r["tokens_per_input"], r["n"]) == \
            (block["accuracy"], block["ci95"], block["tokens_per_input"], block["n"])
        assert (r["job"], r["group"], r["seed"], r["technique"]) == ("job0", "g", 3, "s2a")
    distilled = rows[2]
    assert distilled["vs_system1"] == 0.5 and distilled["vs_system1_p"] == paired(s1, d)["p"]
    assert rows[0]["vs_system1"] is None        # System 1 has no difference from itself


def test_the_samples_table_puts_system1_system2_and_distilled_side_by_side():
    def sample(row, ok, tokens):
        return {"id": "x1", "question": "2+2?", "gold": "4", "output": f"{row} says", "predicted": "4" if ok else "5",
                "correct": ok, "tokens": tokens, "trace": [{"step": "answer", "output": f"{row} says"}]}
    samples = {"system1": [sample("s1", False, 3)], "system2": [sample("s2", True, 30)],
               "distilled": [sample("d", True, 2)]}
    [row] = [dict(zip(SAMPLE_COLUMNS, r)) for r in sample_rows(samples)]
    assert (row["system1_answer"], row["system1_correct"], row["system1_tokens"]) == ("5", False, 3)
    assert (row["system2_output"], row["system2_correct"], row["system2_tokens"]) == ("s2 says", True, 30)
    assert (row["distilled_answer"], row["distilled_tokens"]) == ("4", 2)
    assert row["system2_trace"] == "[answer] s2 says" and row["input"] == "2+2?"


def test_the_training_run_is_in_the_jobs_group_and_linked_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = Tracker(_compose(["logger=wandb", "logger.mode=offline"]), tmp_path)
    try:
        settings = tracker.job_log("round2/").training_run("0123456789abcdef")
        init = settings["init"]
        assert init["group"] == tracker.group and init["job_type"] == "train" and init["mode"] == "offline"
        assert init["id"] == f"{tracker.run.id}-train-01234567" and init["config"]["job_run"] == tracker.run.id
        assert tracker.run.summary["training/round2/0123456789abcdef/wandb_run"] == init["id"]
    finally:
        tracker.finish()
