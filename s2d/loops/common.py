"""What both loops share: whether a run is one (`wanted`), the checks of the loop keys, and what a loop hands
back to the app (`LoopRun`)."""
from __future__ import annotations

from dataclasses import dataclass

from s2d.errors import UserError


@dataclass
class LoopRun:
    """What the app writes and logs after a loop: results.json, and for W&B the evaluation samples, the (last or
    joint) distillation set and its file, the (last or joint) checkpoint, and the (last round's) System 2
    generations file."""
    results: dict
    samples: dict
    examples: list
    distill_path: str
    checkpoint: str | None
    generations: str | None = None


def wanted(cfg) -> bool:
    """`rounds: 1` and no `tasks`: the single run (s2d/cli.py), untouched."""
    return cfg.get("rounds", 1) not in (1, None) or bool(cfg.get("tasks"))


def check(cfg) -> None:
    """Value checks of the loop keys, before anything starts (one clear line each)."""
    rounds = 1 if cfg.get("rounds") is None else cfg.rounds
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise UserError(f"bad rounds={rounds!r}: must be an integer >= 1")
    if cfg.get("tasks") and rounds > 1:
        raise UserError("rounds > 1 with tasks: [...] is not supported; run the continuous loop on one task "
                        "(rounds=N) or the multi-task run (tasks=[...]) with rounds=1")
