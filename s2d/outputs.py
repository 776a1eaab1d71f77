"""What each stage hands to the later ones: typed, so a stage reads `ctx.trained.path`, not `outputs["train"]["path"]`.

Every output says whether it redid no work (`cached`) and carries `info`, what the run's `stages` block in
results.json records beside the wall time (keys, counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class StageOutput:
    cached: bool
    info: dict = field(default_factory=dict)


@dataclass(kw_only=True)
class Generated(StageOutput):
    """System 2 over the unlabeled pool: item id -> one trace per sample."""
    records: dict[str, list[dict]]
    key: str
    path: str


@dataclass(kw_only=True)
class Curated(StageOutput):
    """The distillation set (input -> final answer) and the same generations curated by the ablation filters."""
    examples: list[dict]
    stats: dict
    key: str
    path: str
    ablations: dict[str, Curated] = field(default_factory=dict)


@dataclass(kw_only=True)
class Trained(StageOutput):
    """The distilled model's folder (None when curation kept nothing), and one per ablation filter."""
    path: str | None
    key: str
    method: str | None = None
    ablations: dict[str, Trained] = field(default_factory=dict)


@dataclass(kw_only=True)
class Evaluated(StageOutput):
    """Metrics and scored samples per result row (`system1`, `system2`, `distilled`, `distilled[none]`, ...)."""
    rows: dict[str, dict]
    samples: dict[str, list[dict]]


@dataclass(kw_only=True)
class BroadScores(StageOutput):
    """Per held-out benchmark: base vs distilled score, paired delta with its interval and p, verdict."""
    broad: dict
