import pytest
from omegaconf import OmegaConf

from s2d.errors import UserError
from s2d.tasks.last_letter import LastLetter

CFG = {"impl": "last_letter", "name": "last_letter", "words_per_input": 2,
       "question_template": 'Take the last letters of the words in "{words}" and concatenate them.',
       "system1_template": "{question}", "target_template": "{answer}"}


def task(**kw):
    return LastLetter(OmegaConf.create({**CFG, **kw}))


@pytest.mark.parametrize("text,expected", [
    ("rb", "rb"),
    ("RB.", "rb"),
    ('The answer is "rb".', "rb"),
    ("Final answer: rb", "rb"),
    ("Let's see: Edgar ends in r, Bob ends in b.\nFinal answer: \"RB\"", "rb"),
    ("The last letters are r and b. Concatenated: r b", "rb"),
    ("So the answer is: r-b", "rb"),
    ("**Final answer:** ynam.", "ynam"),
    ("y, n, a, m", "ynam"),
    ("The concatenation gives 'ynam'!", "ynam"),
])
def test_extract_survives_chatty_outputs(text, expected):
    assert task().extract(text) == expected


def test_unparseable_output_is_none():
    assert task().extract("") is None
    assert task().extract("1234 ...") is None


def test_splits_are_seeded_disjoint_and_prefix_stable():
    t = task()
    train, test = t.splits(0, 50, 20)
    assert len(train) == 50 and len(test) == 20
    train_words = {w for i in train for w in i.question.split('"')[1].split()}
    test_words = {w for i in test for w in i.question.split('"')[1].split()}
    assert not train_words & test_words
    assert t.splits(0, 50, 20) == (train, test)
    assert t.splits(1, 50, 20)[0] != train
    bigger_train, _ = t.splits(0, 80, 20)
    assert bigger_train[:50] == train


def test_gold_answer_and_words_per_input():
    t = task(words_per_input=4)
    item = t.splits(0, 1, 1)[0][0]
    words = item.question.split('"')[1].split()
    assert len(words) == 4
    assert item.answer == "".join(w[-1] for w in words).lower()
    assert t.is_correct(t.extract(f"Final answer: {item.answer.upper()}"), item)


def test_negative_size_is_a_user_error():
    with pytest.raises(UserError, match="words_per_input"):
        task(words_per_input=-1)
