"""Curation filters: from the System 2 records of each input, the chosen final answer or None (input dropped).

`choose` sees every input at once (USC and perturbation make model calls of their own, batched); the simple
filters only implement `select` over one input's extracted answers. Only `gold` reads labels, and it exists as an
upper-bound ablation, labelled as such in every report.
"""
from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from s2d.filters.base import Filter
from s2d.registry import register
from s2d.schema import FilterConfig
from s2d.votes import unique_majority


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
