import pytest
from omegaconf import OmegaConf

from s2d.tasks.coin_flip import CoinFlip

CFG = {"impl": "coin_flip", "name": "coin_flip", "people_per_input": 3, "system1_template": "{question}",
       "target_template": "{answer}"}


def task():
    return CoinFlip(OmegaConf.create(CFG))


@pytest.mark.parametrize("text,expected", [
    ("Yes", "yes"), ("no.", "no"), ("No, the coin is now tails up.", "no"),
    ("Final answer: YES", "yes"), ("Let me think. Ann flips it...\nFinal answer: no", "no"),
    ('"Yes"', "yes"), ("I cannot tell.", None),
])
def test_extract(text, expected):
    assert task().extract(text) == expected


def test_answer_follows_parity_of_flips():
    train, test = task().splits(0, 100, 50)
    for item in train + test:
        flips = item.question.count(" flips the coin")
        assert item.answer == ("yes" if flips % 2 == 0 else "no")
        assert item.question.count(" the coin.") == 3
    assert {i.answer for i in train} == {"yes", "no"}
