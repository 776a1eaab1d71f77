"""One vote count for the filter, maj@k and the diagnostics (s2d/votes.py), each with its own tie rule."""
from s2d.votes import majority_vote, ranked_votes, unique_majority


def test_votes_rank_by_count_then_by_first_appearance_and_never_count_unparsed():
    assert ranked_votes(["b", None, "a", "a", "b", "c"]) == [("b", 2), ("a", 2), ("c", 1)]
    assert ranked_votes([None, None]) == []


def test_maj_at_k_takes_the_first_seen_of_tied_answers():
    assert majority_vote(["a", "b", "b", None]) == "b"
    assert majority_vote(["a", "b"]) == "a" and majority_vote([None]) is None


def test_the_filter_keeps_only_a_unique_winner_with_its_share_of_all_samples():
    assert unique_majority(["ab"] * 4 + ["cd"] * 4, 0.5) is None            # a tie
    assert unique_majority(["ab"] * 4 + [None] * 4, 0.5) == "ab"            # unparsed samples count in N
    assert unique_majority(["ab"] * 3 + ["cd", "ef", "gh", None, None], 0.5) is None
    assert unique_majority(["", "", "ab"], 0.3) == "ab"                      # an empty answer is no vote
