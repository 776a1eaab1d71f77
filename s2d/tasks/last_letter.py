"""Last-letter concatenation (paper §4.2.1):
`Take the last letters of the words in "Edgar Bob" and concatenate them.`"""
from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import MISSING

from s2d.errors import check_positive
from s2d.registry import register
from s2d.schema import TaskConfig
from s2d.tasks.base import Item, Task, answer_segment
from s2d.tasks.names_data import name_splits

QUOTED = re.compile(r"[\"“'‘`]([A-Za-z][A-Za-z ,\-]*?)[\"”'’`]")
SPACED_LETTERS = re.compile(r"^(?:[a-z][\s,\-]+)+[a-z]$")


@register("task", "last_letter")
class LastLetter(Task):
    @dataclass
    class Config(TaskConfig):
        words_per_input: int = MISSING
        question_template: str = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        check_positive("task.words_per_input", cfg.words_per_input)

    def splits(self, seed, train_size, test_size):
        train, test = name_splits(seed, int(self.cfg.words_per_input), train_size, test_size)
        return ([self._item(f"train-{i}", g) for i, g in enumerate(train)],
                [self._item(f"test-{i}", g) for i, g in enumerate(test)])

    def _item(self, id_, words):
        question = self.cfg.question_template.format(words=" ".join(words))
        return Item(id_, question, "".join(w[-1] for w in words).lower())

    def normalize(self, answer):
        return re.sub(r"[^a-z]", "", answer.lower())

    def extract(self, text):
        seg = answer_segment(text)
        if seg == text.strip():   # no answer marker: the answer sits at the end ("... Concatenated: r b")
            lines = [line for line in seg.splitlines() if line.strip()] or [""]
            seg = lines[-1].rsplit(":", 1)[-1]
        quoted = QUOTED.findall(seg)
        if quoted:            # `The answer is "rb".` -> the last quoted string
            seg = quoted[-1]
        seg = seg.strip().strip(".!*").strip().lower()
        if SPACED_LETTERS.match(seg):      # "r b" / "r, b" / "r-b" -> "rb"
            return self.normalize(seg)
        words = re.findall(r"[a-z]+", seg)
        if not words:
            return None
        # A one-line answer is the answer; in a longer sentence the answer is its last word ("... is rb.").
        return words[0] if len(words) == 1 else words[-1]
