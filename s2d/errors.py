"""User-facing errors: one clear line, a non-zero exit, no traceback."""


class UserError(Exception):
    """A mistake in the user's config or command line. `cli` prints it as one line and exits 2."""


def check_choice(what: str, value, choices) -> None:
    """Raise a UserError naming `value` and the valid `choices` when `value` is not one of them."""
    choices = sorted(choices)
    if value not in choices:
        raise UserError(f"unknown {what} '{value}'; valid choices: {', '.join(map(str, choices))}")


def check_positive(what: str, value, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"bad {what}={value!r}: must be a number {bound}")


def check_target_template(what: str, template: str) -> None:
    """A distillation target template may use `{answer}` and `{output}` and nothing else."""
    import string
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if not fields or not fields <= {"answer", "output"}:
        raise UserError(f"{what}={template!r}: use {{answer}} (the final answer) and/or {{output}} (System 2's final "
                        f"text), e.g. {what}='{{answer}}'")
