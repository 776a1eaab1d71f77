"""Branch-Solve-Merge for pairwise judging (Saha et al. 2023; paper Figs. 7-9).

branch: one call proposes up to `max_criteria` evaluation criteria for the user question (Fig. 7);
solve:  one call per criterion scores both responses 1-5 on that criterion alone (Fig. 8);
merge:  `merge: llm` asks the model to combine the solve outputs into a verdict (Fig. 9), `merge: sum` adds the
        per-criterion scores with no model call (the original BSM's symbolic merge; the paper's §4.4 text).
The final output ends in [[A]] / [[B]] / [[C]]; the trace's tokens are the sum over every call (the paper's #Tokens).

    s2d technique=bsm technique.merge=sum task=mtbench_judge filter=perturbation
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict

from omegaconf import MISSING

from s2d.backends.base import Sampling
from s2d.errors import check_positive
from s2d.registry import register
from s2d.schema import TechniqueConfig, choice
from s2d.techniques.base import Technique, fill, trace

LIST_ITEM = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s*(.+)$")
SCORE = re.compile(r"(?<![\d.])([1-5])(?:\s*/\s*5)?(?![\d.])")


def parse_criteria(plan: str, limit: int) -> list[tuple[str, str]]:
    """(name, description) per criterion: numbered or bulleted lines, else every non-empty line; the name is the
    text before the first colon. An empty plan gives one generic criterion so solve still runs."""
    lines = [line.strip() for line in plan.splitlines() if line.strip()]
    listed = [m.group(1).strip() for m in map(LIST_ITEM.match, lines) if m]
    chosen = (listed or lines)[:limit] or ["Overall quality: how helpful, relevant and accurate each response is."]
    return [(c.split(":", 1)[0].strip(" *#").strip() or c, c) for c in chosen]


def parse_scores(text: str) -> tuple[int, int] | None:
    """The first two 1-5 scores in a solve output (Assistant A's, then B's), or None."""
    found = SCORE.findall(text)
    return (int(found[0]), int(found[1])) if len(found) >= 2 else None


def sum_merge(solve_outputs: list[str]) -> str:
    """Symbolic merge: add each side's scores over the parseable criteria; the higher total wins, equal is a tie."""
    scores = [s for s in map(parse_scores, solve_outputs) if s]
    a, b = sum(s[0] for s in scores), sum(s[1] for s in scores)
    verdict = "A" if a > b else "B" if b > a else "C"
    return f"Total scores over {len(scores)} criteria: A {a}, B {b}.\nConclusive judgement: [[{verdict}]]"


@register("technique", "bsm")
class BranchSolveMerge(Technique):
    @dataclass
    class Config(TechniqueConfig):
        merge: str = choice("llm", "sum")
        max_criteria: int = MISSING
        branch: Dict[str, Any] = MISSING      # {max_new_tokens, template} of each stage
        solve: Dict[str, Any] = MISSING
        merge_llm: Dict[str, Any] = MISSING

    def __init__(self, cfg):
        super().__init__(cfg)
        check_positive("technique.max_criteria", cfg.max_criteria)
        for part in ("branch", "solve", "merge_llm"):
            check_positive(f"technique.{part}.max_new_tokens", cfg[part].max_new_tokens)

    def _call(self, gen, part, prompts, temperature, top_p, seed):
        step = self.cfg[part]
        return gen.generate(prompts, Sampling(int(step.max_new_tokens), temperature, top_p), seed=seed,
                            desc=f"bsm/{part}")

    def run(self, gen, inputs, temperature, top_p, seed):
        calls = [[] for _ in inputs]
        # branch: one evaluation plan per input
        prompts = fill(self.cfg.branch.template, inputs, "technique 'bsm' branch")
        plans = self._call(gen, "branch", prompts, temperature, top_p, seed)
        criteria = []
        for c, prompt, out in zip(calls, prompts, plans):
            c.append({"step": "branch", "prompt": prompt, "output": out.text, "tokens": out.tokens})
            criteria.append(parse_criteria(out.text, int(self.cfg.max_criteria)))
        # solve: every (input, criterion) pair in one batched call
        jobs = [(k, name, desc) for k, crit in enumerate(criteria) for name, desc in crit]
        prompts = fill(self.cfg.solve.template, [{**inputs[k], "eval_criterion": desc, "criterion_name": name}
                                                 for k, name, desc in jobs], "technique 'bsm' solve")
        solved = self._call(gen, "solve", prompts, temperature, top_p, seed + 1)
        per_input = [[] for _ in inputs]
        for (k, name, _), prompt, out in zip(jobs, prompts, solved):
            calls[k].append({"step": f"solve:{name}", "prompt": prompt, "output": out.text, "tokens": out.tokens})
            per_input[k].append(out.text)
        # merge
        if self.cfg.merge == "sum":
            return [trace(c, sum_merge(outs)) for c, outs in zip(calls, per_input)]
        prompts = [self.cfg.merge_llm.template.format(solve_output="\n\n".join(outs)) for outs in per_input]
        merged = self._call(gen, "merge_llm", prompts, temperature, top_p, seed + 2)
        for c, prompt, out in zip(calls, prompts, merged):
            c.append({"step": "merge", "prompt": prompt, "output": out.text, "tokens": out.tokens})
        return [trace(c) for c in calls]
