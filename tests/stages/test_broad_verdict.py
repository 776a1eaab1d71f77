from s2d.stages.broad import verdict


def _scores(values):
    return {"metric": "acc,none", "score": sum(values) / len(values), "stderr": 0.1,
            "per_item": {str(i): float(v) for i, v in enumerate(values)}}


def test_paired_delta_and_stderr():
    base, dist = _scores([1, 1, 1, 1, 0, 0, 0, 0]), _scores([1, 1, 1, 0, 0, 0, 0, 0])
    v = verdict(base, dist, sigma=2.0)
    assert v["delta"] == -0.125 and v["n"] == 8
    assert abs(v["stderr"] - 0.125) < 1e-12          # diffs: one -1, seven 0 -> sd 0.3536 / sqrt(8)
    assert v["regressed"] is False                      # -0.125 is one stderr, not two


def test_clear_regression_is_flagged():
    base, dist = _scores([1] * 20), _scores([1] * 5 + [0] * 15)
    v = verdict(base, dist, sigma=2.0)
    assert v["delta"] == -0.75 and v["regressed"] is True


def test_identical_models_are_not_regressed():
    s = _scores([1, 0, 1, 0])
    v = verdict(s, s, sigma=2.0)
    assert v["delta"] == 0 and v["stderr"] == 0 and v["regressed"] is False


def test_improvement_is_never_a_regression():
    v = verdict(_scores([0] * 10), _scores([1] * 10), sigma=2.0)
    assert v["delta"] == 1.0 and v["regressed"] is False
