"""What every task gives the pipeline: seeded disjoint splits, the System 1 prompt, answer extraction, scoring."""
from __future__ import annotations

import re
from dataclasses import dataclass

FINAL_ANSWER = re.compile(r"final answer\s*(?:is)?\s*[:：]\s*(.+)", re.IGNORECASE)
ANSWER_IS = re.compile(r"\banswer\s+(?:is|would be|will be)\s*:?\s*(.+)", re.IGNORECASE)


@dataclass
class Item:
    id: str
    question: str
    answer: str   # gold; read only by scoring, `target_accuracy` analysis and filter=gold


def answer_segment(text: str) -> str:
    """The part of a model output that holds the answer: after the last `Final answer:` if any, else after the
    last `the answer is`, else the whole text."""
    for pattern in (FINAL_ANSWER, ANSWER_IS):
        hits = pattern.findall(text)
        if hits:
            return hits[-1].strip()
    return text.strip()


class Task:
    """Base class. Subclasses implement `make_items`, `extract` and optionally `normalize`."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name

    # -- data -------------------------------------------------------------------------------------------
    def splits(self, seed: int, train_size: int, test_size: int) -> tuple[list[Item], list[Item]]:
        """Disjoint, seeded train (unlabeled pool) and test items. Prefix-stable: asking for more items
        keeps the first ones, so a larger run reuses a smaller run's cached generations."""
        raise NotImplementedError

    # -- prompts ----------------------------------------------------------------------------------------
    def system1_prompt(self, item: Item) -> str:
        return self.cfg.system1_template.format(question=item.question)

    def target(self, answer: str) -> str:
        """The distillation target for a final answer (input -> answer only, no reasoning)."""
        return self.cfg.target_template.format(answer=answer)

    # -- answers ----------------------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        """Final answer in normalised form, or None when the output cannot be parsed (counted as `unparsed`)."""
        raise NotImplementedError

    def normalize(self, answer: str) -> str:
        return answer.strip().lower()

    def is_correct(self, predicted: str | None, item: Item) -> bool:
        return predicted is not None and predicted == self.normalize(item.answer)
