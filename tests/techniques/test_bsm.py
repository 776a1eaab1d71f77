from omegaconf import OmegaConf

from s2d.registry import build
from s2d.tasks.base import Item
from s2d.techniques.bsm import parse_criteria, parse_scores, sum_merge
from tests.fakes import ScriptedGenerator
from tests.test_config import _compose as compose_cfg


def test_parse_criteria_numbered_bulleted_and_fallback():
    plan = "Here is a plan:\n1. Accuracy: is it right?\n2) Clarity - easy to read\n- Depth: detail\n"
    assert [n for n, _ in parse_criteria(plan, 5)] == ["Accuracy", "Clarity - easy to read", "Depth"]
    assert len(parse_criteria("\n".join(f"{i}. c{i}: d" for i in range(1, 9)), 5)) == 5
    assert parse_criteria("Helpfulness: useful", 5) == [("Helpfulness", "Helpfulness: useful")]
    assert len(parse_criteria("", 5)) == 1   # an empty plan still gets one criterion


def test_parse_scores_and_sum_merge():
    assert parse_scores("Assistant A: 4/5\nAssistant B: 2") == (4, 2)
    assert parse_scores("no scores here") is None
    assert parse_scores("A scored 10 and 3.5") is None
    assert sum_merge(["4\n2", "3\n3", "garbage"]).endswith("[[A]]")
    assert sum_merge(["1\n5"]).endswith("[[B]]")
    assert sum_merge(["3\n3"]).endswith("[[C]]")


def _bsm(merge):
    cfg = OmegaConf.merge(compose_cfg(["technique=bsm"]).technique, {"merge": merge})
    return build("technique", cfg)


def _reply(prompt):
    if "Evaluation Plan:" in prompt:
        return "1. Accuracy: correct?\n2. Clarity: readable?\n3. Brevity: short?"
    if prompt.startswith("You are given a user question"):
        return "5\n2 because A is right"
    return "A is better overall. Conclusive judgement: [[A]]"


def test_bsm_calls_and_tokens_sum_over_calls():
    inputs = [Item(str(i), f"q{i}", "A", fields={"answer_a": "a", "answer_b": "b"}).inputs() for i in range(3)]
    for merge, n_calls in (("llm", 1 + 3 + 1), ("sum", 1 + 3)):
        gen = ScriptedGenerator(_reply)
        traces = _bsm(merge).run(gen, inputs, 0.0, 1.0, seed=0)
        assert len(gen.prompts) == 3 * n_calls
        for t in traces:
            assert len(t["calls"]) == n_calls
            assert t["tokens"] == sum(c["tokens"] for c in t["calls"]) == sum(len(c["output"].split())
                                                                            for c in t["calls"])
            assert t["output"].endswith("[[A]]")
        solve = [c for c in traces[0]["calls"] if c["step"].startswith("solve:")]
        assert [c["step"] for c in solve] == ["solve:Accuracy", "solve:Clarity", "solve:Brevity"]
        assert "[Evaluation Criterion]\n2. Clarity: readable?" not in solve[1]["prompt"]
        assert "Clarity: readable?" in solve[1]["prompt"] and "Evaluation of Clarity:" in solve[1]["prompt"]
