"""Multi-operand addition (`What is 23 + 45 + 67?`): a symbolic task close in spirit to the paper's last-letter and
coin-flip tasks (not one of the paper's), where small embedded models gain from CoT."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from omegaconf import MISSING

from s2d.errors import check_positive
from s2d.registry import register
from s2d.schema import TaskConfig
from s2d.tasks.base import Item, Task, answer_segment

INTEGER = re.compile(r"-?\d[\d,]*")


@register("task", "addition")
class Addition(Task):
    @dataclass
    class Config(TaskConfig):
        operands: int = MISSING
        digits: int = MISSING
        question_template: str = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        check_positive("task.operands", cfg.operands)
        check_positive("task.digits", cfg.digits)

    def splits(self, seed, train_size, test_size):
        train, test = self.operand_splits(seed, train_size, test_size)
        return ([self._item(f"train-{i}", ops) for i, ops in enumerate(train)],
                [self._item(f"test-{i}", ops) for i, ops in enumerate(test)])

    def operand_splits(self, seed, train_size, test_size) -> tuple[list[tuple], list[tuple]]:
        """Seeded, disjoint operand tuples for the pool and the test split (prefix-stable in both sizes)."""
        test = self._draw(random.Random(f"addition-test-{seed}"), test_size, exclude=set())
        train = self._draw(random.Random(f"addition-train-{seed}"), train_size, exclude=set(test))
        return train, test

    def question(self, ops) -> str:
        return self.cfg.question_template.format(expression=" + ".join(map(str, ops)))

    def _draw(self, rng, count, exclude):
        lo, hi = 10 ** (int(self.cfg.digits) - 1), 10 ** int(self.cfg.digits) - 1
        out, seen = [], set(exclude)
        while len(out) < count:
            ops = tuple(rng.randint(lo, hi) for _ in range(int(self.cfg.operands)))
            if ops not in seen:      # train and test never share an input
                seen.add(ops)
                out.append(ops)
        return out

    def _item(self, id_, ops):
        return Item(id_, self.question(ops), str(sum(ops)))

    def normalize(self, answer):
        return answer.replace(",", "").strip()

    def extract(self, text):
        seg = answer_segment(text)
        numbers = INTEGER.findall(seg)
        if not numbers:
            return None
        # After an answer marker the answer comes first; in free text the last number is the result.
        return self.normalize(numbers[0] if seg != text.strip() else numbers[-1])
