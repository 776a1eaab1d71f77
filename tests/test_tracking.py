"""s2d/tracking.py on the real W&B client (offline): a logging or finishing failure is one warning line, never the
run's end, and results.json (written before logging) stands."""
import wandb

from s2d.tracking import Tracker
from tests.test_config import _compose


def test_a_wandb_failure_is_one_warning_line_not_the_runs_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = Tracker(_compose(["logger=wandb", "logger.mode=offline"]), tmp_path)
    assert tracker.run is not None and tracker.info["mode"] == "offline"
    run = tracker.run
    results = {"run": {}, "system1": {"accuracy": 0.5, "n": 2}, "curation": {"kept": 1}}
    samples = {"system1": [], "system2": [], "distilled": []}
    # A real failure of the client: the distillation set's file is gone when its artifact is built.
    tracker.log_results(results, samples, [], str(tmp_path / "removed_distill_set.json"))
    out = capsys.readouterr().out
    [line] = [l for l in out.splitlines() if "WARNING" in l]
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
