import json

from omegaconf import OmegaConf

from s2d.registry import build
from s2d.tasks.base import Item
from tests.test_config import _compose


def _task(**over):
    return build("task", OmegaConf.merge(_compose(["task=mtbench_judge"]).task, over))


def test_pairs_of_reference_and_model_answers_both_orders():
    task = _task(answers_per_question=2)
    test_q, train_q = task.question_split(0, 8, 6)
    assert len(task.questions()) == 30
    assert not {q["question_id"] for q in test_q} & {q["question_id"] for q in train_q}
    answers = {str(q["question_id"]): [f"mine {q['question_id']} {k}" for k in range(2)] for q in test_q + train_q}
    train, test = task.splits_with_answers(0, 8, 6, answers)
    assert len(train) == 8 and len(test) == 12             # every test pair in both orders
    refs = {q["question_id"]: q["reference"] for q in task.questions()}
    for item in (*train, *test):
        ref_side = "A" if item.fields["answer_a"] == refs[item.meta["question_id"]] else "B"
        assert item.answer == ref_side                      # proxy label: the reference answer is better
    ab, ba = test[0], test[1]
    assert (ab.fields["answer_a"], ab.fields["answer_b"]) == (ba.fields["answer_b"], ba.fields["answer_a"])
    assert {ab.answer, ba.answer} == {"A", "B"}
    assert "[[A]]" in task.system1_prompt(ab) and ab.fields["answer_a"] in task.system1_prompt(ab)


def test_verdicts_swap_and_inconsistency_by_construction():
    task = _task()
    assert task.extract("blah [[B]] ... final [[a]]") == "A"
    assert task.extract("no verdict") is None
    assert task.unperturb("A") == "B" and task.unperturb("C") == "C"
    item = Item("train-0", "q", "A", fields={"answer_a": "x", "answer_b": "y"}, meta={"pair": "train-0"})
    twin = task.perturb(item)
    assert (twin.fields["answer_a"], twin.fields["answer_b"], twin.answer) == ("y", "x", "B")
    items = [Item(f"test-{n}-{o}", "q", "A", meta={"pair": f"test-{n}", "swapped": o == "ba"})
             for n in range(3) for o in ("ab", "ba")]
    preds = {"test-0-ab": "A", "test-0-ba": "B",    # follows the swap: consistent
             "test-1-ab": "A", "test-1-ba": "A",    # position bias: inconsistent
             "test-2-ab": "C", "test-2-ba": None}   # unparsed: inconsistent
    m = task.extra_metrics([{"id": k, "predicted": v} for k, v in preds.items()], items)
    assert m["pairs"] == 3 and abs(m["inconsistent"] - 2 / 3) < 1e-9


def test_labels_path_human_judgments(tmp_path):
    rows = [{"question_id": q, "turn": 1, "winner": w,
             "conversation_a": [{"role": "user", "content": f"Q{q}"}, {"role": "assistant", "content": "a"}],
             "conversation_b": [{"role": "user", "content": f"Q{q}"}, {"role": "assistant", "content": "b"}]}
            for q, w in [(81, "model_a"), (81, "tie"), (82, "model_b"), (83, "model_a")]]
    rows.append({**rows[0], "turn": 2})
    path = tmp_path / "human.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = _task(labels_path=str(path))
    train, test = task.splits(0, 10, 1)
    assert len(train) + len(test) // 2 == 4             # turn 2 skipped
    assert {i.answer for i in test} <= {"A", "B", "C"}
    assert not {i.meta["question_id"] for i in train} & {i.meta["question_id"] for i in test}
