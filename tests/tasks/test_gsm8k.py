from s2d.registry import build
from tests.test_config import _compose


def _task():
    return build("task", _compose(["task=gsm8k"]).task)


def test_disjoint_slices_and_fewshot_outside_both():
    task = _task()
    train, test = task.splits(0, 100, 200)
    assert len(train) == 100 and len(test) == 200
    assert not {i.question for i in train} & {i.question for i in test}
    shots = test[0].fields["fewshot_direct"]
    assert shots.count("Question: ") == 8
    assert not any(i.question in shots for i in (*train, *test))
    assert "Final answer: " in test[0].fields["fewshot_cot"] and "<<" not in test[0].fields["fewshot_cot"]


def test_extraction():
    task = _task()
    assert task.extract("She sells 9 eggs, 9*2 = 18.\nFinal answer: $1,018.00") == "1018.00"
    assert task.extract("Final answer: 18.0") == "18"
    assert task.extract("3 + 4 = 7 so she has 7 left") == "7"
    assert task.extract("no number") is None
    _, test = task.splits(0, 1, 3)
    item = test[0]
    assert task.is_correct(task.extract(f"Final answer: {item.answer}"), item)
