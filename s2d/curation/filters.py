"""Curation filters: from the System 2 records of each input, the chosen final answer or None (input dropped).

`choose` sees every input at once (USC and perturbation make model calls of their own, batched); the simple
filters only implement `select` over one input's extracted answers. Only `gold` reads labels, and it exists as an
upper-bound ablation, labelled as such in every report.
"""
from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from s2d.errors import UserError, check_positive
from s2d.registry import register
from s2d.schema import FilterConfig
from s2d.votes import unique_majority


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

    def choose(self, service, task, items, records) -> dict[str, tuple[str, str] | None]:
        """item id -> (final answer, the System 2 output that gave it), or None when the input is dropped.
        `service` (a `GenerationService`) is for filters that call the model themselves (USC, perturbation)."""
        chosen = {}
        for item in items:
            outputs = [r["output"] for r in records[item.id]]
            answers = [task.extract(o) for o in outputs]
            answer = self.select(answers, task.normalize(item.answer))
            chosen[item.id] = None if answer is None else (answer, outputs[answers.index(answer)]
                                                           if answer in answers else "")
        return chosen

    def select(self, answers: list[str | None], gold: str) -> str | None:
        raise NotImplementedError


@register("filter", "majority")
class Majority(Filter):
    """Self-consistency of outputs (§3.2): keep the most frequent answer if it is the unique winner and holds at
    least `min_share` of all N samples (unparsed samples count in N but cannot win)."""
    @dataclass
    class Config(FilterConfig):
        min_share: float = MISSING


    def select(self, answers, gold):
        return unique_majority(answers, float(self.cfg.min_share))   # a tie: no majority winner


@register("filter", "none")
class NoFilter(Filter):
    """No consistency check: the (single, greedy) System 2 answer, dropped only when unparseable."""

    def select(self, answers, gold):
        return answers[0]


@register("filter", "gold")
class Gold(Filter):
    """Ablation / upper bound, not label-free: keep an input only if a System 2 answer equals the gold label."""
    uses_labels = True

    def select(self, answers, gold):
        return gold if gold in answers else None
