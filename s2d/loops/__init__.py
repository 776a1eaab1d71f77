"""Beyond the paper (its §6.1 open questions): the continuous distillation loop and multi-task distillation.

    s2d experiment=continuous                  # 3 rounds of S2A distillation on the demo's model and task
    s2d experiment=continuous rounds=4         # one round more: rounds 1-3 come from the cache, only round 4 runs
    s2d experiment=multitask                   # two tasks, each with its technique and filter, one joint model
    s2d 'tasks=[{task: addition_sycophancy, technique: s2a, filter: majority, weight: 1.0},
                {task: addition, technique: cot, filter: majority, weight: 0.5}]'

Both run the single-run stages (s2d/pipeline.py, s2d/stages/) over more than one Context; no stage is copied.

Layout: common.py (LoopRun, the loop keys' checks), continuous.py (rounds), multitask.py (tasks, mixing, the joint
model); s2d/loop_rows.py reads their rows once for the table, W&B and the report.
"""
from __future__ import annotations

from pathlib import Path

from s2d.loops.common import LoopRun, check, wanted
from s2d.loops.continuous import run_rounds
from s2d.loops.multitask import check_entries, run_multitask

__all__ = ["LoopRun", "check", "check_entries", "run", "wanted"]


def run(cfg, run_dir: Path, overrides: list[str], started, t0: float, tracker=None) -> LoopRun:
    """`tracker` (s2d/tracking.py): the job's W&B run, which each round's or task's stages log into as they end."""
    check(cfg)
    log = tracker.job_log if tracker is not None else (lambda prefix="": None)
    if cfg.get("tasks"):
        return run_multitask(cfg, Path(run_dir), overrides, started, t0, log)
    return run_rounds(cfg, Path(run_dir), started, t0, log)
