"""USC and perturbation filters on cases where the right decision is known by construction (scripted model)."""
from omegaconf import OmegaConf

from s2d.filters.perturbation import agreeing
from s2d.filters.usc import final_text, fit_answers, format_answers
from s2d.registry import build
from s2d.tasks.base import Item
from tests.fakes import ScriptedGenerator, fake_pool, fake_service
from tests.test_config import _compose


def _task(name, **over):
    cfg = _compose([f"task={name}"]).task
    return build("task", OmegaConf.merge(cfg, over))


# -- USC --------------------------------------------------------------------------------------------------
def test_fit_answers_falls_back_20_then_10_then_none():
    outputs = [f"answer {i}" for i in range(20)]
    assert fit_answers(outputs, [20, 10], lambda s: True) == outputs
    assert fit_answers(outputs, [20, 10], lambda s: len(s) <= 10) == outputs[:10]
    assert fit_answers(outputs, [20, 10], lambda s: False) is None


def test_final_text_reads_after_final():
    assert final_text('Most say so.\nFINAL: "Paris"') == "Paris"
    assert final_text("no marker") == "no marker"
    assert format_answers(["x", "y"]) == "\n\nAnswer 1: x\n\nAnswer 2: y\n\n"


def _usc(**over):
    cfg = OmegaConf.merge(_compose(["filter=usc"]).filter, over)
    return build("filter", cfg)


def _records(item_outputs):
    return {i: [{"output": o, "tokens": 1} for o in outs] for i, outs in item_outputs.items()}


def test_usc_composes_the_majority_answer_with_the_model(tmp_path):
    """A scripted USC model that answers with the most common of the answers it was shown: the filter's choice
    must be that answer, taken from the FINAL: line, with the composed text as the target output."""
    task = _task("last_letter")
    items = [Item("a", 'Take the last letters of the words in "Ann Bob".', "nb")]
    outputs = ["The answer is nb."] * 12 + ["The answer is xy."] * 8

    def reply(prompt):
        assert "20 answers have been provided" in prompt and prompt.count("\n\nAnswer ") == 20
        return "Most answers agree.\nFINAL: nb"
    gen = ScriptedGenerator(reply)
    chosen = _usc().choose(fake_service(tmp_path, gen), task, items, fake_pool(_records({"a": outputs})))
    assert chosen == {"a": ("nb", "nb")}
    assert len(gen.prompts) == 1


def test_usc_falls_back_to_10_answers_then_to_a_random_one(tmp_path):
    task = _task("last_letter")
    items = [Item("a", "q", "nb")]
    outputs = ["pad " * 40 + "The answer is nb."] * 20
    seen = []
    gen = ScriptedGenerator(lambda p: seen.append(p.count("\n\nAnswer ")) or "FINAL: nb")
    # a context that holds 10 padded answers but not 20
    usc = _usc(max_prompt_tokens=700, max_new_tokens=16)
    pool = fake_pool(_records({"a": outputs}))
    assert usc.choose(fake_service(tmp_path / "ten", gen), task, items, pool)["a"][0] == "nb"
    assert seen == [10]
    # a context that holds not even 10: no model call, one of the responses at random
    gen2 = ScriptedGenerator(lambda p: "FINAL: never")
    usc = _usc(max_prompt_tokens=100, max_new_tokens=16)
    answer, output = usc.choose(fake_service(tmp_path / "rand", gen2), task, items, pool)["a"]
    assert answer == "nb" and output in outputs and gen2.prompts == []


# -- perturbation -------------------------------------------------------------------------------------------
def test_agreeing():
    assert agreeing(["A"], ["A"]) == "A"
    assert agreeing(["A"], ["B"]) is None
    assert agreeing([None], [None]) is None


def _judge_items():
    good, bad = "The capital of France is Paris.", "idk"
    return [Item("p0", "Capital of France?", "A", fields={"answer_a": good, "answer_b": bad}),
            Item("p1", "Capital of France?", "B", fields={"answer_a": bad, "answer_b": good})]


def _run_perturbation(tmp_path, reply):
    task = _task("mtbench_judge")
    technique = OmegaConf.to_container(_compose(["technique=system1"]).technique)
    technique["steps"][0]["template"] = "{answer_a} ||| {answer_b}"
    filt = build("filter", _compose(["filter=perturbation"]).filter)
    items = _judge_items()
    gen = ScriptedGenerator(reply)
    service = fake_service(tmp_path, gen)
    records = _records({i.id: [reply(f"{i.fields['answer_a']} ||| {i.fields['answer_b']}")] for i in items})
    return filt.choose(service, task, items, fake_pool(records, technique)), gen


def test_perturbation_keeps_a_position_consistent_judge(tmp_path):
    """Prefers the informative answer wherever it sits: both orders agree, so both inputs are kept."""
    chosen, gen = _run_perturbation(tmp_path, lambda p: "[[A]]" if p.startswith("The capital") else "[[B]]")
    assert {k: v[0] for k, v in chosen.items()} == {"p0": "A", "p1": "B"}
    assert len(gen.prompts) == 2 and all(p.startswith("idk") or "||| idk" in p for p in gen.prompts)


def test_perturbation_drops_a_position_biased_judge(tmp_path):
    """Always says [[A]]: after the swap it contradicts itself, so every input is dropped."""
    chosen, _ = _run_perturbation(tmp_path, lambda p: "[[A]]")
    assert chosen == {"p0": None, "p1": None}
