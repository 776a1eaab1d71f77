import json

import pytest

from s2d.report import main


def _results(acc):
    row = {"accuracy": acc, "tokens_per_input": 10.0, "n": 4, "unparsed": 0}
    return {"run": {"task": "last_letter", "technique": "cot", "filter": "majority", "training": "lora"},
            "system1": row, "system2": {**row, "tokens_per_input": 100.0}, "distilled": row,
            "curation": {"kept": 3, "inputs": 4, "uses_gold_labels": False}}


def test_report_has_one_row_per_run(tmp_path, capsys):
    for i, acc in enumerate([0.25, 0.5]):
        d = tmp_path / "multirun" / f"{i}_job"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(_results(acc)))
    main([str(tmp_path / "multirun"), "--out", str(tmp_path / "rep")])
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| 0_job |" in text and "| 1_job |" in text and "50.0%" in text and "3/4" in text


def test_report_on_a_missing_path_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no such path"):
        main([str(tmp_path / "nope")])
