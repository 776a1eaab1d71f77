"""Self-consistency under input perturbation (paper §3.2; used for BSM judging in §4.4).

System 2 also runs on a perturbed copy of each input whose answer must not change (the task's `perturb`, e.g. the
two responses swapped for a pairwise judge); an input is kept only if the two answers agree once the perturbed
one is mapped back (`unperturb`, e.g. [[B]] on the swapped pair means [[A]] on the original).

    s2d technique=bsm task=mtbench_judge filter=perturbation
"""
from __future__ import annotations

from s2d import keys
from s2d.errors import UserError
from s2d.filters.base import Filter
from s2d.registry import register, registered_all
from s2d.tasks.base import Task


def perturbs(task_cls) -> bool:
    """Whether a task class defines its own `perturb` (the base class's returns None)."""
    return task_cls.perturb is not Task.perturb


def agreeing(original: list[str | None], perturbed: list[str | None]) -> str | None:
    """The answer if every original and (mapped-back) perturbed answer is the same parsed answer, else None."""
    answers = set(original) | set(perturbed)
    return next(iter(answers)) if len(answers) == 1 and None not in answers else None


@register("filter", "perturbation")
class Perturbation(Filter):
    def check_task(self, task) -> None:
        if not perturbs(type(task)):
            valid = sorted(name for name, cls in registered_all("task").items() if perturbs(cls))
            raise UserError(f"filter=perturbation needs a task with an answer-preserving perturbation; task "
                            f"'{task.name}' has none (valid: {', '.join(valid)}); use filter=majority or filter=usc")

    def choose(self, service, task, items, pool):
        perturbed = [task.perturb(item) for item in items]
        if any(p is None for p in perturbed):
            raise UserError(f"filter=perturbation: task '{task.name}' gave no perturbation of an input")
        result = service.run("train-perturbed", pool.technique, perturbed, self.samples_per_input,
                             self.temperature, self.top_p, keys.perturbed(pool.payload, self.cfg))
        chosen = {}
        for item, twin in zip(items, perturbed):
            outputs = [r["output"] for r in pool.records[item.id]]
            original = [task.extract(o) for o in outputs]
            mapped = [task.unperturb(task.extract(r["output"])) for r in result.records[twin.id]]
            answer = agreeing(original, mapped)
            chosen[item.id] = None if answer is None else (answer, outputs[0])
        return chosen
