import pytest
from omegaconf import OmegaConf

from s2d.tasks.addition import Addition


def task(**kw):
    return Addition(OmegaConf.create({"impl": "addition", "name": "addition", "operands": 3, "digits": 2,
                                      "question_template": "What is {expression}?", "system1_template": "{question}",
                                      "target_template": "{answer}", **kw}))


@pytest.mark.parametrize("text,expected", [
    ("135", "135"), ("The sum is 1,135.", "1135"), ("23 + 45 = 68, 68 + 67 = 135", "135"),
    ("Final answer: 135 (23 + 45 + 67)", "135"), ("I don't know", None),
])
def test_extract(text, expected):
    assert task().extract(text) == expected


def test_items_are_seeded_disjoint_and_correct():
    train, test = task().splits(0, 200, 100)
    assert not {i.question for i in train} & {i.question for i in test}
    for item in train + test:
        ops = [int(x) for x in item.question.removeprefix("What is ").rstrip("?").split(" + ")]
        assert len(ops) == 3 and all(10 <= o <= 99 for o in ops) and item.answer == str(sum(ops))
    assert task().splits(0, 200, 100) == (train, test)
