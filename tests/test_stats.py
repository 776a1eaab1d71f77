"""s2d.stats against known values and by simulation (the interval's coverage, the detectable drop's power)."""
import numpy as np
import pytest

from s2d.stats import accuracy_interval, adjusted_wald, detectable_drop, holm, paired, sign_test


def _items(pairs):
    """(a, b) scores per item -> two {id: score} maps."""
    return ({str(i): a for i, (a, _) in enumerate(pairs)}, {str(i): b for i, (_, b) in enumerate(pairs)})


def test_the_exact_mcnemar_test_on_a_constructed_table():
    # 9 items only b answers, 1 only a answers, 10 both, 5 neither: P = 2 * P(X <= 1 | 10, 1/2) = 22 / 1024.
    a, b = _items([(0, 1)] * 9 + [(1, 0)] + [(1, 1)] * 10 + [(0, 0)] * 5)
    result = paired(a, b)
    assert result["n"] == 25 and result["b_only"] == 9 and result["a_only"] == 1
    assert result["delta"] == pytest.approx(8 / 25)
    assert result["p"] == pytest.approx(22 / 1024) == sign_test(9, 1)
    lo, hi = result["ci95"]
    assert 0 < lo < 8 / 25 < hi   # excludes 0, as the test rejects
    assert sign_test(0, 0) == 1.0 and sign_test(5, 5) == pytest.approx(1.0)


def test_items_scored_by_one_side_only_are_left_out_and_scores_must_be_binary():
    result = paired({"1": 1, "2": 0, "3": 1}, {"2": 1, "3": 1, "4": 0})
    assert result["n"] == 2 and result["delta"] == 0.5
    with pytest.raises(ValueError, match="0 or 1"):
        paired({"1": 0.5}, {"1": 1})


def test_agreeing_items_do_not_make_a_narrow_interval_at_small_n():
    lo, hi = adjusted_wald(0, 0, 10)
    assert lo < -0.15 and hi > 0.15   # 10 agreeing items cannot rule out a 15-point drop
    lo, hi = adjusted_wald(0, 0, 2000)
    assert -0.05 < lo < 0 < hi < 0.05


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    n, p_b, p_a = 40, 0.15, 0.05   # true difference 0.10
    cells = rng.multinomial(n, [p_b, p_a, 1 - p_b - p_a], size=4000)
    covered = [lo <= p_b - p_a <= hi for lo, hi in (adjusted_wald(int(b), int(a), n) for b, a, _ in cells)]
    assert 0.93 <= np.mean(covered) <= 0.975


def test_holm_on_a_known_example():
    adjusted = holm({"w": 0.01, "x": 0.04, "y": 0.03, "z": 0.005})
    assert adjusted == pytest.approx({"z": 0.02, "w": 0.03, "y": 0.06, "x": 0.06})


def test_the_detectable_drop_is_detected_about_80_percent_of_the_time():
    n, q = 200, 0.2
    d = detectable_drop(n, q)
    assert 0.05 < d < 0.2
    rng = np.random.default_rng(1)
    cells = rng.multinomial(n, [(q - d) / 2, (q + d) / 2, 1 - q], size=2000)   # b worse than a by d
    detected = np.mean([sign_test(int(b), int(a)) < 0.05 and b < a for b, a, _ in cells])
    assert 0.7 <= detected <= 0.9
    assert detectable_drop(10, 0.1) > 0.3 and detectable_drop(10, 0.1) > detectable_drop(100, 0.1)
    assert detectable_drop(2, 0.5) is None   # 2 items detect nothing at 80% power


def test_a_rows_accuracy_interval_is_wilsons():
    lo, hi = accuracy_interval(135, 200)   # 67.5%: Wilson's closed form gives [0.6073, 0.7361]
    assert lo == pytest.approx(0.6073, abs=1e-4) and hi == pytest.approx(0.7361, abs=1e-4)
    assert accuracy_interval(0, 10)[0] == 0.0 and accuracy_interval(0, 10)[1] > 0.25
    assert accuracy_interval(0, 0) is None
