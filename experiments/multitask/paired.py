"""Per task of a multi-task run: the joint model against the task's own distilled model on the same test items,
paired (McNemar's test, continuity-corrected), from the run's results.json and the cached generations.

    python experiments/multitask/paired.py outputs/multitask-seed0/<time>/results.json

An item counts as right when the task's own extraction of the cached answer equals its gold answer (the same
scoring as the run's rows; the accuracies printed must match results.json's `distilled` and `joint`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from omegaconf import OmegaConf

from s2d.cache import recorded_generations
from s2d.registry import build


def cached_answers(cache: Path, label: str, task_name: str, checkpoint: str) -> tuple[dict, dict]:
    """(key payload, item id -> record) of the greedy test-split generations of one trained model."""
    for payload, path in recorded_generations(cache, label):
        if (payload.get("task", {}).get("name") == task_name and payload.get("checkpoint") == checkpoint
                and payload.get("n_samples") == 1):
            lines = path.read_text().splitlines()
            return payload, {r["item"]: r for r in map(json.loads, filter(str.strip, lines))}
    raise SystemExit(f"no cached {label} generations of checkpoint {checkpoint} for task {task_name} in {cache}")


def mcnemar(only_a: int, only_b: int) -> tuple[float, float]:
    """Chi-square (1 dof, continuity-corrected) and its p-value."""
    if only_a + only_b == 0:
        return 0.0, 1.0
    chi2 = (abs(only_a - only_b) - 1) ** 2 / (only_a + only_b)
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--cache-dir", default=os.environ.get("S2D_CACHE_DIR", str(Path.home() / ".cache" / "s2d")))
    args = ap.parse_args()
    results, cache = json.loads(args.results.read_text()), Path(args.cache_dir)
    joint_key = results["joint"]["checkpoint"]
    for name, block in results["tasks"].items():
        payload, own = cached_answers(cache, "eval-distilled", block["task"], block["stages"]["train"]["key"])
        _, joint = cached_answers(cache, "eval-joint", block["task"], joint_key)
        task = build("task", OmegaConf.create(payload["task"]))
        _, test = task.splits(int(payload["seed"]), int(results["run"]["train_size"]), int(results["run"]["test_size"]))

        def right(records, item):
            return task.extract(records[item.id]["output"]) == task.normalize(item.answer)

        pairs = [(right(own, item), right(joint, item)) for item in test]
        only_own, only_joint = sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)
        chi2, p = mcnemar(only_own, only_joint)
        print(f"{name}: own {sum(a for a, _ in pairs) / len(pairs):.1%}, joint {sum(b for _, b in pairs) / len(pairs):.1%}"
              f" on {len(pairs)} items; only own right {only_own}, only joint right {only_joint}; "
              f"McNemar chi2 {chi2:.2f}, p {p:.3f}")


if __name__ == "__main__":
    main()
