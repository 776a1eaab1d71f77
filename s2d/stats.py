"""Paired comparisons of two models scored on the same items (each item right or wrong): the numbers a reviewer
asks for beside "distilled 85% vs System 1 67.5%".

- `accuracy_interval`: one row's accuracy with its 95% Wilson score interval (scipy's `binomtest`), the error bar
  of the accuracy-vs-tokens plot.
- `paired`: the difference `b - a` in accuracy with a 95% interval and an exact two-sided p-value. The test is the
  exact McNemar test, i.e. the sign test on the discordant items (scipy's `binomtest`); the interval is Bonett and
  Price's adjusted Wald interval for paired proportions (Psychological Methods 17(4), 2012: one pseudo-count added
  to each discordant cell), which keeps its coverage at small n and, unlike the plain Wald or Newcombe intervals,
  does not collapse to [0, 0] when no item is discordant (10 agreeing items say little about a 15-point drop).
- `holm`: Holm's step-down adjustment of several p-values (the broad block's benchmarks), controlling the
  family-wise error rate.
- `detectable_drop`: the smallest difference an exact-test-sized sample of n items detects with 80% power at the
  observed rate of discordant items (Connor's sample-size formula for McNemar's test, Biometrics 43, 1987, solved
  for the difference).
"""
from __future__ import annotations

import math

from scipy import optimize, stats

Z95 = float(stats.norm.ppf(0.975))


def accuracy_interval(correct: int, n: int, level: float = 0.95) -> list[float] | None:
    """The Wilson score interval of `correct` out of `n`."""
    if n <= 0:
        return None
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return [float(ci.low), float(ci.high)]


def paired(a: dict, b: dict, level: float = 0.95) -> dict:
    """`b - a` over the items both were scored on (`{item id: 0/1}` each): n, delta, ci95, p and the discordant
    counts (`b_only`: b right where a was wrong; `a_only`: the reverse)."""
    common = sorted(set(a) & set(b))
    n = len(common)
    b_only = sum(1 for i in common if _right(b[i]) and not _right(a[i]))
    a_only = sum(1 for i in common if _right(a[i]) and not _right(b[i]))
    if n == 0:
        return {"n": 0, "delta": None, "ci95": None, "p": None, "b_only": 0, "a_only": 0}
    lo, hi = adjusted_wald(b_only, a_only, n, level)
    return {"n": n, "delta": (b_only - a_only) / n, "ci95": [lo, hi], "p": sign_test(b_only, a_only),
            "b_only": b_only, "a_only": a_only}


def _right(score) -> bool:
    value = float(score)
    if value not in (0.0, 1.0):
        raise ValueError(f"paired comparisons take per-item scores of 0 or 1, got {score!r}")
    return value == 1.0


def sign_test(b_only: int, a_only: int) -> float:
    """The exact McNemar test: two-sided binomial test of the discordant items against an even split."""
    discordant = b_only + a_only
    return 1.0 if discordant == 0 else float(stats.binomtest(b_only, discordant, 0.5).pvalue)


def adjusted_wald(b_only: int, a_only: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Bonett-Price interval for the paired difference of proportions (b_only - a_only) / n, clipped to [-1, 1]."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    p_b, p_a = (b_only + 1) / (n + 2), (a_only + 1) / (n + 2)
    centre = p_b - p_a
    half = z * math.sqrt(max(p_b + p_a - centre ** 2, 0.0) / (n + 2))
    return max(-1.0, centre - half), min(1.0, centre + half)


def holm(p_values: dict) -> dict:
    """Holm-adjusted p-values, by the same keys: the i-th smallest times (m - i), made monotone, capped at 1."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(order), 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[key]))
        out[key] = running
    return out


def detectable_drop(n: int, discordant_rate: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest |difference| that n paired items detect with `power` at two-sided level `alpha`, where a
    fraction `discordant_rate` of items is answered differently by the two models (at least the difference
    itself: every item that differs is discordant). None when not even a difference of 1 is detectable."""
    if n <= 0:
        return None
    z_a, z_b = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))

    def shortfall(d: float) -> float:
        q = max(discordant_rate, d)
        return d * math.sqrt(n) - (z_a * math.sqrt(q) + z_b * math.sqrt(max(q - d * d, 0.0)))
    if shortfall(1.0) < 0:
        return None
    return float(optimize.brentq(shortfall, 1e-9, 1.0))
