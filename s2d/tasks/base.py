"""What every task gives the pipeline: seeded disjoint splits, the System 1 prompt, answer extraction, scoring."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

FINAL_ANSWER = re.compile(r"final answer\s*(?:is)?\s*[:：]\s*(.+)", re.IGNORECASE)
ANSWER_IS = re.compile(r"\banswer\s+(?:is|would be|will be)\s*:?\s*(.+)", re.IGNORECASE)


@dataclass
class Item:
    id: str
    question: str    # the System 1 input (what the distilled model is trained and evaluated on)
    answer: str      # gold; read only by scoring, `target_accuracy` analysis and filter=gold
    fields: dict = field(default_factory=dict)   # more template inputs for techniques ({user_query}, {response_a})
    meta: dict = field(default_factory=dict)     # scoring-only data (aliases, group), never shown to a model

    def inputs(self) -> dict:
        """What technique templates can format: `{question}` plus the task's extra fields."""
        return {"question": self.question, **self.fields}


def answer_segment(text: str) -> str:
    """The part of a model output that holds the answer: after the last `Final answer:` if any, else after the
    last `the answer is`, else the whole text."""
    for pattern in (FINAL_ANSWER, ANSWER_IS):
        hits = pattern.findall(text)
        if hits:
            return hits[-1].strip()
    return text.strip()


class Task:
    """Base class. Subclasses implement `splits`, `extract` and optionally `normalize`."""

    version = 1   # bump when splits, prompts or answer extraction change (folded into every cache key)

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name

    # -- data -------------------------------------------------------------------------------------------
    def splits(self, seed: int, train_size: int, test_size: int) -> tuple[list[Item], list[Item]]:
        """Disjoint, seeded train (unlabeled pool) and test items. Prefix-stable: asking for more items
        keeps the first ones, so a larger run reuses a smaller run's cached generations."""
        raise NotImplementedError

    def build_splits(self, service, data) -> tuple[list[Item], list[Item]]:
        """What the pipeline calls: `splits` for the config's data seed and sizes (`data`), with the task's constant
        template fields (`task.fields`, e.g. few-shot exemplars) added to every item. Tasks whose inputs need the
        model (mtbench_judge pairs the model's own answers) override this and generate through `service`."""
        train, test = self.splits(int(data.seed), int(data.train_size), int(data.test_size))
        constant = dict(self.cfg.get("fields") or {})
        for item in (*train, *test):
            item.fields = {**constant, **item.fields}
        return train, test

    # -- prompts ----------------------------------------------------------------------------------------
    def system1_prompt(self, item: Item) -> str:
        return self.cfg.system1_template.format_map(item.inputs())

    def target(self, answer: str, output: str = "", template: str | None = None) -> str:
        """The distillation target: `target_template` (or the run's `template`) over the final answer (`{answer}`,
        the default: input -> answer only, no reasoning) or the System 2 output that produced it (`{output}`, e.g.
        BSM's merge text)."""
        return (template or self.cfg.target_template).format(answer=answer, output=output.strip())

    # -- answers ----------------------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        """Final answer in normalised form, or None when the output cannot be parsed (counted as `unparsed`)."""
        raise NotImplementedError

    def normalize(self, answer: str) -> str:
        return answer.strip().lower()

    def is_correct(self, predicted: str | None, item: Item) -> bool:
        return predicted is not None and predicted == self.normalize(item.answer)

    # -- optional hooks -----------------------------------------------------------------------------------
    def perturb(self, item: Item) -> Item | None:
        """An input whose answer must not change (filter=perturbation), or None if the task has none."""
        return None

    def unperturb(self, answer: str | None) -> str | None:
        """Map an answer on the perturbed input back to the original input's terms (e.g. [[A]] <-> [[B]])."""
        return answer

    def extra_metrics(self, samples: list[dict], items: list[Item]) -> dict:
        """Task metrics beyond accuracy (per-group accuracy, % inconsistent), from the scored samples."""
        return {}
