"""results.json's comparisons of rows (paired, on the same items) and the end-of-run table that prints them."""
import pytest

from s2d.results import comparisons, format_table


def _samples(correct: list[int]) -> list[dict]:
    return [{"id": f"q{i}", "correct": bool(c)} for i, c in enumerate(correct)]


def test_every_distilled_row_is_compared_with_system1_and_system2_on_the_same_items():
    rows = {"system1": _samples([0] * 10 + [1] * 10), "system2": _samples([1] * 18 + [0] * 2),
            "distilled": _samples([1] * 16 + [0] * 4), "distilled[gold]": _samples([1] * 20),
            "system1@plain": _samples([0] * 20), "distilled@plain": _samples([1] * 20)}
    c = comparisons(rows)
    assert set(c) == {"system2 - system1", "distilled - system1", "distilled - system2",
                      "distilled[gold] - system1", "distilled[gold] - system2", "distilled@plain - system1@plain"}
    d = c["distilled - system1"]
    # system1 right on q10..q19; distilled right on q0..q15: distilled alone on q0..q9, system1 alone on q16..q19.
    assert (d["n"], d["b_only"], d["a_only"]) == (20, 10, 4) and d["delta"] == pytest.approx(0.3)
    assert d["ci95"][0] < 0.3 < d["ci95"][1] and 0 < d["p"] < 1


def test_the_table_prints_each_rows_interval_and_its_difference_from_system1():
    metrics = {"accuracy": 0.5, "ci95": [0.3, 0.7], "tokens_per_input": 10.0, "unparsed": 0, "n": 20}
    results = {"run": {"task": "t", "model": "m", "filter": "majority", "training": "lora", "seed": 0,
                       "technique": "s2a"},
               "system1": metrics, "system2": {**metrics, "accuracy": 0.9}, "distilled": {**metrics, "accuracy": 0.8},
               "curation": {"kept": 5, "inputs": 8, "kept_fraction": 0.625, "samples_per_input": 3},
               "comparisons": {"system2 - system1": {"delta": 0.4, "ci95": [0.2, 0.6], "p": 0.0001},
                               "distilled - system1": {"delta": 0.3, "ci95": [0.1, 0.5], "p": 0.0213},
                               "distilled - system2": {"delta": -0.1, "ci95": [-0.3, 0.1], "p": 0.5}}}
    table = format_table(results)
    assert "[30.0, 70.0]" in table
    lines = table.splitlines()
    assert next(line for line in lines if line.startswith("System 2")).endswith("+40.0 [+20.0, +60.0] p<0.001")
    distilled = next(line for line in lines if line.startswith("distilled System 1"))
    assert distilled.endswith("+30.0 [+10.0, +50.0] p=0.021")
    assert "  distilled - system2: -10.0 [-30.0, +10.0] p=0.500" in lines
