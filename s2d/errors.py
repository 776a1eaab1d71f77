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
