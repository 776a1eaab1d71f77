"""The technique contract: a System 2 program over a generator, one trace per input (`Technique.run`), and the
helpers every technique shares for filling templates and recording calls. Techniques: chain.py (System 1, CoT,
RaR 1- and 2-step, S2A), bsm.py (Branch-Solve-Merge)."""
from __future__ import annotations

from s2d.errors import UserError


class Technique:
    """A System 2 program over a generator. `run` returns one trace per input:
    {"calls": [{"step", "prompt", "output", "tokens"}...], "output": final text, "tokens": sum over calls}."""

    version = 1   # bump when the program changes what it generates (folded into every cache key)

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name

    def run(self, gen, inputs: list[dict], temperature: float, top_p: float, seed: int) -> list[dict]:
        """`inputs`: one dict per input, `{"question": ..., **task fields}` (see `Item.inputs`)."""
        raise NotImplementedError


def fill(template: str, inputs: list[dict], what: str) -> list[str]:
    """Format a template per input; a field the task does not provide is a one-line UserError."""
    try:
        return [template.format_map(i) for i in inputs]
    except KeyError as e:
        have = ", ".join(sorted(inputs[0])) if inputs else "none"
        raise UserError(f"{what} needs the template field {{{e.args[0]}}}, which this task does not provide "
                        f"(it provides: {have})") from None


def trace(calls: list[dict], output: str | None = None) -> dict:
    """One input's record: every call, the final output (default: the last call's) and tokens summed over calls."""
    return {"calls": calls, "output": calls[-1]["output"] if output is None else output,
            "tokens": sum(c["tokens"] for c in calls)}
