"""Universal Self-Consistency (Chen et al. 2023; paper Fig. 12, used to curate S2A targets).

The model reads the question and the N sampled System 2 responses and composes the answer consistent with the
majority of them ("FINAL: ..."). As in the paper (A.2): N = 20; if the 20 responses do not fit the context the
prompt falls back to the first 10; if 10 still do not fit, one response is picked at random. USC always yields an
answer, so it drops an input only when the composed answer cannot be parsed.

    s2d technique=s2a task=triviaqa_sycophancy filter=usc filter.samples_per_input=20
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import List, Optional

from omegaconf import MISSING

from s2d import keys
from s2d.errors import check_positive
from s2d.filters.base import Filter
from s2d.registry import register
from s2d.schema import FilterConfig
from s2d.tasks.base import Item
from s2d.techniques.chain import Chain, single_call

FINAL = re.compile(r"FINAL\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)


def format_answers(outputs: list[str]) -> str:
    return "".join(f"\n\nAnswer {i}: {o.strip()}" for i, o in enumerate(outputs, 1)) + "\n\n"


def fit_answers(outputs: list[str], sizes: list[int], fits) -> list[str] | None:
    """The first `size` responses for the first size in `sizes` whose prompt `fits`; None if none fits
    (the caller then takes one response at random)."""
    for size in sizes:
        subset = outputs[:size]
        if fits(subset):
            return subset
    return None


def final_text(usc_output: str) -> str:
    """The composed answer after the last `FINAL:` (the whole output when the marker is missing)."""
    hits = FINAL.findall(usc_output)
    return (hits[-1] if hits else usc_output).strip().strip('"').strip()


@register("filter", "usc")
class UniversalSelfConsistency(Filter):
    @dataclass
    class Config(FilterConfig):
        fallback_sizes: List[int] = MISSING
        max_new_tokens: int = MISSING
        max_prompt_tokens: Optional[int] = None
        template: str = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        check_positive("filter.max_new_tokens", cfg.max_new_tokens)
        self.sizes = [int(s) for s in cfg.fallback_sizes]

    def usc_technique(self) -> Chain:
        return single_call("usc", "usc", self.cfg.template, int(self.cfg.max_new_tokens))

    def prompt_limit(self, gen) -> int:
        limit = self.cfg.get("max_prompt_tokens")
        if not limit:
            limit = int(getattr(gen.tokenizer, "model_max_length", 4096))
            limit = 4096 if limit > 1_000_000 else limit   # tokenizers without a limit report 1e30
            limit = min(limit, getattr(gen, "max_model_len", None) or limit)   # a vLLM engine's context
        return int(limit) - int(self.cfg.max_new_tokens)

    def plan(self, service, task, items, records):
        """Per input: ("usc", the USC pseudo-item) or ("random", the chosen output)."""
        gen = service.generator()
        limit = self.prompt_limit(gen)

        def fits(item, subset) -> bool:
            prompt = self.cfg.template.format_map({**item.inputs(), "answers": format_answers(subset),
                                                   "n": len(subset)})
            return len(gen.tokenizer(gen.chat_prompt(prompt), add_special_tokens=False)["input_ids"]) <= limit

        plans = {}
        for item in items:
            outputs = [r["output"] for r in records[item.id]]
            subset = fit_answers(outputs, self.sizes, functools.partial(fits, item))
            if subset is None:   # the paper: "select an answer randomly if 10 generated answers are still too long"
                rng = random.Random(f"{service.seed}-{item.id}")
                plans[item.id] = ("random", rng.choice(outputs))
            else:
                plans[item.id] = ("usc", Item(item.id, item.question, item.answer,
                                              {**item.fields, "answers": format_answers(subset), "n": len(subset)}))
        return plans

    def choose(self, service, task, items, pool):
        plans = self.plan(service, task, items, pool.records)
        usc_items = [p for kind, p in plans.values() if kind == "usc"]
        composed = {}
        if usc_items:
            result = service.run("usc", self.usc_technique(), usc_items, 1, 0.0, 1.0,
                                 keys.usc(pool.key, self.cfg, self, service.model_identity, usc_items))
            composed = {i.id: final_text(result.records[i.id][0]["output"]) for i in usc_items}
        chosen = {}
        for item in items:
            kind, payload = plans[item.id]
            text = composed[item.id] if kind == "usc" else payload
            answer = task.extract(text)
            chosen[item.id] = None if answer is None else (answer, text)
        return chosen
