"""Votes over a model's sampled answers, one definition for every place that counts them: the majority-vote
filter (s2d/filters/basic.py), the maj@k and compute-matched rows (s2d/stages/evaluate.py) and the curation
diagnostics (s2d/stages/curate.py)."""
from __future__ import annotations

from collections import Counter


def ranked_votes(answers: list[str | None]) -> list[tuple[str, int]]:
    """The parsed answers (None = unparsed, never a vote) with their counts, most votes first; among equal counts
    the answer seen first comes first."""
    return Counter(a for a in answers if a is not None).most_common()   # Counter keeps first-seen order in ties


def majority_vote(answers: list[str | None]) -> str | None:
    """The most frequent parsed answer (the first seen wins a tie), None if nothing parsed: maj@k's prediction."""
    ranked = ranked_votes(answers)
    return ranked[0][0] if ranked else None


def unique_majority(answers: list[str | None], min_share: float) -> str | None:
    """The self-consistency filter's choice: the most frequent non-empty answer if no other answer has as many
    votes and it holds at least `min_share` of all the samples (unparsed ones included), else None."""
    ranked = [(a, n) for a, n in ranked_votes(answers) if a]
    if not ranked or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    top, count = ranked[0]
    return top if count / len(answers) >= min_share else None
