"""Per task of a multi-task run: the joint model against the task's own distilled model on the same test items,
paired (s2d.stats.paired: Bonett-Price 95% interval, exact McNemar p), from the run's results.json and the cached
generations. Runs made since 2026-12-07 carry the same numbers in results.json (`tasks.<name>.comparisons`,
"joint - distilled"); this script recomputes them for older runs' results files.

    python experiments/multitask/paired.py outputs/multitask-seed0/<time>/results.json

An item counts as right when the task's own extraction of the cached answer equals its gold answer (the same
scoring as the run's rows; the accuracies printed must match results.json's `distilled` and `joint`).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from omegaconf import OmegaConf

from s2d.cache import recorded_generations
from s2d.registry import build
from s2d.results import difference_text
from s2d.stats import paired


def cached_answers(cache: Path, label: str, task_name: str, checkpoint: str) -> tuple[dict, dict]:
    """(key payload, item id -> record) of the greedy test-split generations of one trained model."""
    for payload, path in recorded_generations(cache, label):
        if (payload.get("task", {}).get("name") == task_name and payload.get("checkpoint") == checkpoint
                and payload.get("n_samples") == 1):
            lines = path.read_text().splitlines()
            return payload, {r["item"]: r for r in map(json.loads, filter(str.strip, lines))}
    raise SystemExit(f"no cached {label} generations of checkpoint {checkpoint} for task {task_name} in {cache}")


def right(task, records: dict, item) -> bool:
    return task.extract(records[item.id]["output"]) == task.normalize(item.answer)


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

        own_right = {item.id: int(right(task, own, item)) for item in test}
        joint_right = {item.id: int(right(task, joint, item)) for item in test}
        diff = paired(own_right, joint_right)
        own_acc, joint_acc = sum(own_right.values()) / len(test), sum(joint_right.values()) / len(test)
        print(f"{name}: own {own_acc:.1%}, joint {joint_acc:.1%}"
              f" on {diff['n']} items; only own right {diff['a_only']}, only joint right {diff['b_only']}; "
              f"joint - own {difference_text(diff)} (points [95%], exact McNemar p)")


if __name__ == "__main__":
    main()
