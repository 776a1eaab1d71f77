import pytest
from omegaconf import OmegaConf

from s2d.errors import UserError
from s2d.filters.basic import Gold, Majority, NoFilter


def majority(min_share=0.5, n=8):
    return Majority(OmegaConf.create({"impl": "majority", "name": "majority", "samples_per_input": n,
                                      "temperature": 0.7, "top_p": 0.95, "min_share": min_share}))


@pytest.mark.parametrize("answers,expected", [
    (["ab"] * 5 + ["cd"] * 3, "ab"),
    (["ab"] * 4 + ["cd"] * 4, None),              # tie: no majority winner
    (["ab"] * 4 + [None] * 4, "ab"),              # 4/8 = 0.5 reaches the share
    (["ab"] * 3 + ["cd", "ef", "gh", None, None], None),   # plurality but below the share
    ([None] * 8, None),
])
def test_majority_vote(answers, expected):
    assert majority().select(answers, gold="zz") == expected


def test_majority_share_is_configurable():
    answers = ["ab"] * 3 + ["cd", "ef", "gh", None, None]
    assert majority(min_share=0.3).select(answers, gold="zz") == "ab"


def test_majority_never_reads_gold():
    assert majority().select(["ab"] * 8, gold="cd") == "ab"


def test_gold_keeps_only_correct():
    g = Gold(OmegaConf.create({"impl": "gold", "name": "gold", "samples_per_input": 1, "temperature": 0, "top_p": 1}))
    assert g.uses_labels
    assert g.select(["ab"], gold="ab") == "ab"
    assert g.select(["cd"], gold="ab") is None


def test_none_filter_keeps_the_greedy_answer():
    f = NoFilter(OmegaConf.create({"impl": "none", "name": "none", "samples_per_input": 1, "temperature": 0,
                                   "top_p": 1}))
    assert f.select(["cd"], gold="ab") == "cd"
    assert f.select([None], gold="ab") is None


def test_sampling_several_greedy_samples_is_refused():
    with pytest.raises(UserError, match="temperature"):
        Majority(OmegaConf.create({"impl": "majority", "name": "m", "samples_per_input": 8, "temperature": 0,
                                   "top_p": 1, "min_share": 0.5}))
