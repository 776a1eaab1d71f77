"""The loops' rows, read once: a round (continuous) and a task (multi-task) block of results.json as the named
values every view shows. The printed table (s2d/results.py), W&B's tables and per-round charts (s2d/tracking.py)
and the report (s2d/report.py) format these values and never reach into the blocks themselves, so a change in a
block's shape is made here. A comparison is s2d.stats.paired's dict (`delta`, `ci95`, `p`), an interval a pair."""
from __future__ import annotations

ROUND_KEYS = ("round", "system1_accuracy", "system2_accuracy", "system2_tokens", "distilled_accuracy",
              "distilled_tokens", "kept_fraction", "target_accuracy", "distilled_ci95", "distilled_vs_round1",
              "cached")
TASK_KEYS = ("task", "technique", "filter", "weight", "system1_accuracy", "system2_accuracy", "distilled_accuracy",
             "joint_accuracy", "joint_minus_distilled")
INTERVALS = ("distilled_ci95",)
COMPARISONS = ("distilled_vs_round1", "joint_minus_distilled")


def round_view(r: dict) -> dict:
    """Round k: its base model's System 1, its System 2, its distilled model (with interval), its curation, and
    the distilled model against round 1's System 1 on the same items (None before that comparison existed)."""
    view = {"round": r["round"],
            "system1_accuracy": r["system1"]["accuracy"],
            "system2_accuracy": r["system2"]["accuracy"], "system2_tokens": r["system2"]["tokens_per_input"],
            "distilled_accuracy": r["distilled"]["accuracy"], "distilled_tokens": r["distilled"]["tokens_per_input"],
            "kept_fraction": r["curation"]["kept_fraction"], "target_accuracy": r["curation"].get("target_accuracy"),
            "distilled_ci95": r["distilled"].get("ci95"),
            "distilled_vs_round1": (r.get("versus_round1") or {}).get("distilled"),
            "cached": all(s.get("cached") for s in (r.get("stages") or {}).values())}
    return {k: view[k] for k in ROUND_KEYS}


def task_view(name: str, t: dict) -> dict:
    """One task of a multi-task run: its plugins and weight, its System 1 / System 2 / own distilled rows, the
    joint model on its items, and joint - own distilled (paired; the plain difference where no pairing exists)."""
    paired = (t.get("comparisons") or {}).get("joint - distilled")
    view = {"task": name, "technique": t["technique"], "filter": t["filter"], "weight": t["weight"],
            "system1_accuracy": t["system1"]["accuracy"], "system2_accuracy": t["system2"]["accuracy"],
            "distilled_accuracy": t["distilled"]["accuracy"], "joint_accuracy": t["joint"]["accuracy"],
            "joint_minus_distilled": paired or {"delta": t["joint_minus_distilled"]}}
    return {k: view[k] for k in TASK_KEYS}


def columns(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The scalar columns of a view (`flat`): an interval as `_low` / `_high`, a comparison as its delta and
    `_ci95_low` / `_ci95_high` / `_p`."""
    out = []
    for key in keys:
        if key in INTERVALS:
            out += [f"{key}_low", f"{key}_high"]
        elif key in COMPARISONS:
            out += [key, f"{key}_ci95_low", f"{key}_ci95_high", f"{key}_p"]
        else:
            out.append(key)
    return tuple(out)


def ends(ci) -> list:
    """An interval as its two ends (None, None without one): two scalars a W&B table or chart can hold."""
    return list(ci) if ci else [None, None]


def flat(view: dict) -> list:
    """A view's values in `columns(view)` order, each scalar: what a W&B table row or chart point holds."""
    out = []
    for key, value in view.items():
        if key in INTERVALS:
            out += ends(value)
        elif key in COMPARISONS:
            value = value or {}
            out += [value.get("delta"), *ends(value.get("ci95")), value.get("p")]
        else:
            out.append(value)
    return out


ROUND_COLUMNS = columns(ROUND_KEYS)
TASK_COLUMNS = columns(TASK_KEYS)
