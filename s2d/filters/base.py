"""The filter contract: from the System 2 records of every input, the chosen final answer or None (the input
dropped). Filters: basic.py (majority, none, gold), usc.py (universal self-consistency), perturbation.py
(agreement under input perturbation)."""
from __future__ import annotations

from dataclasses import dataclass, field

from s2d.errors import UserError, check_positive


@dataclass(frozen=True)
class Pool:
    """What a filter curates: System 2's generations over the unlabeled pool (item id -> one trace per sample),
    and for filters that call the model again (USC, perturbation) what keys their own generations: the pool's
    key, what it was made from (`keys.pool`) and the technique that made it."""
    records: dict[str, list[dict]]
    key: str = ""
    payload: dict = field(default_factory=dict)
    technique: object = None


class Filter:
    uses_labels = False
    version = 1   # bump when the rule changes what it keeps (folded into the distillation-set key)

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name
        check_positive("filter.samples_per_input", cfg.samples_per_input)
        self.samples_per_input = int(cfg.samples_per_input)
        self.temperature = float(cfg.temperature)
        self.top_p = float(cfg.top_p)
        if self.samples_per_input > 1 and self.temperature <= 0:
            raise UserError(f"filter.samples_per_input={self.samples_per_input} needs filter.temperature > 0 "
                            "(greedy samples are all the same)")

    def check_task(self, task) -> None:
        """Raise a one-line UserError if this filter cannot curate `task` (checked before any model loads)."""

    def choose(self, service, task, items, pool: Pool) -> dict[str, tuple[str, str] | None]:
        """item id -> (final answer, the System 2 output that gave it), or None when the input is dropped.
        `service` (a `GenerationService`) is for filters that call the model themselves (USC, perturbation)."""
        chosen = {}
        for item in items:
            outputs = [r["output"] for r in pool.records[item.id]]
            answers = [task.extract(o) for o in outputs]
            answer = self.select(answers, task.normalize(item.answer))
            chosen[item.id] = None if answer is None else (answer, outputs[answers.index(answer)]
                                                           if answer in answers else "")
        return chosen

    def select(self, answers: list[str | None], gold: str) -> str | None:
        raise NotImplementedError
