"""Prompt chains: System 1, CoT, 1-step RaR and 2-step RaR are each a list of prompt steps.

Each step's template sees `{question}` and the outputs of earlier steps by step name (`{rephrase}`). A step runs
for the whole batch of inputs before the next one starts, and every call is recorded with its generated tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

from omegaconf import MISSING, OmegaConf

from s2d.backends.base import Sampling
from s2d.errors import UserError, check_positive
from s2d.registry import register
from s2d.schema import TechniqueConfig
from s2d.techniques.base import Technique, fill, trace


@register("technique", "chain")
class Chain(Technique):
    @dataclass
    class Config(TechniqueConfig):
        steps: List[Dict[str, Any]] = MISSING   # {name, template, max_new_tokens, optional prefill / top_p}

    def __init__(self, cfg):
        super().__init__(cfg)
        if not cfg.steps:
            raise UserError(f"technique '{cfg.name}' has no steps")
        for step in cfg.steps:
            check_positive(f"technique.steps.{step.name}.max_new_tokens", step.max_new_tokens)

    def templates(self) -> list[str]:
        return [step.template for step in self.cfg.steps]

    def run(self, gen, inputs, temperature, top_p, seed):
        state = [dict(i) for i in inputs]
        calls: list[list[dict]] = [[] for _ in inputs]
        for index, (step, template) in enumerate(zip(self.cfg.steps, self.templates())):
            prompts = fill(template, state, f"technique '{self.name}' step '{step.name}'")
            sampling = Sampling(int(step.max_new_tokens), temperature, float(step.get("top_p") or top_p))
            prefill = step.get("prefill") or ""
            outs = gen.generate(prompts, sampling, seed=seed + 7919 * index, prefill=prefill,
                                desc=f"{self.name}/{step.name}")
            for s, c, prompt, out in zip(state, calls, prompts, outs):
                s[step.name] = out.text
                c.append({"step": step.name, "prompt": prompt, "prefill": prefill, "output": out.text,
                          "tokens": out.tokens})
        return [trace(c) for c in calls]


@register("technique", "rar_2step")
class RaR2Step(Chain):
    """2-step RaR (Figs. 4-5). `keep_original: true` gives step 2 the original question too, as the original
    RaR code does (`(original) ... (rephrased) ...`); the paper's figures pass only the rephrased question."""
    @dataclass
    class Config(Chain.Config):
        keep_original: bool = MISSING
        original_respond_template: str = MISSING

    def templates(self):
        templates = super().templates()
        if self.cfg.get("keep_original"):
            templates[-1] = self.cfg.original_respond_template
        return templates


def single_call(name: str, step: str, template: str, max_new_tokens: int) -> Chain:
    """A one-call chain (System 1 answers, the USC call, MT-bench answers); its config is part of cache keys."""
    return Chain(OmegaConf.create({"impl": "chain", "name": name, "steps": [
        {"name": step, "template": template, "max_new_tokens": max_new_tokens}]}))


def system1_technique(task_cfg, max_new_tokens: int) -> Chain:
    """The zero-shot System 1 baseline: the task's System 1 prompt, one call. Used by evaluation for the base
    and the distilled model, so both see exactly the same prompt."""
    return single_call("system1", "answer", task_cfg.system1_template, max_new_tokens)
