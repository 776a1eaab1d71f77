"""Coin flip (paper §4.2.2): `A coin is heads up. Roxas does not flip the coin. ... Is the coin still heads up?`"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from omegaconf import MISSING

from s2d.errors import check_positive
from s2d.registry import register
from s2d.schema import TaskConfig
from s2d.tasks.base import Item, Task, answer_segment
from s2d.tasks.names_data import name_splits

YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


@register("task", "coin_flip")
class CoinFlip(Task):
    @dataclass
    class Config(TaskConfig):
        people_per_input: int = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        check_positive("task.people_per_input", cfg.people_per_input)

    def splits(self, seed, train_size, test_size):
        train, test = name_splits(seed, int(self.cfg.people_per_input), train_size, test_size)
        return self._items("train", train, seed), self._items("test", test, seed + 1)

    def _items(self, split, groups, seed):
        rng = random.Random(seed * 7919 + 1)   # who flips is random, independent of who is named
        items = []
        for i, people in enumerate(groups):
            flips = [rng.random() < 0.5 for _ in people]
            text = " ".join(f"{p} {'flips' if f else 'does not flip'} the coin." for p, f in zip(people, flips))
            question = f"A coin is heads up. {text} Is the coin still heads up?"
            items.append(Item(f"{split}-{i}", question, "yes" if sum(flips) % 2 == 0 else "no"))
        return items

    def extract(self, text):
        seg = answer_segment(text)
        hits = YES_NO.findall(seg)
        if not hits and seg != text:
            hits = YES_NO.findall(text)
        # The first yes/no of the answer segment: models answer first, then explain ("No, because ...").
        return hits[0].lower() if hits else None
