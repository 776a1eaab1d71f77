"""Every technique, filter and task of the paper at tiny size on the real embedded model.

Token counts of multi-call techniques are checked against the cached call records: a trace's tokens are the sum
of its calls' tokens, and BSM makes 1 branch + one solve per criterion (+ 1 merge) calls.
"""

import pytest

from s2d.registry import build
from tests.integration.conftest import records
from tests.test_config import _compose

pytestmark = pytest.mark.integration

TINY = ["data.train_size=3", "eval.max_new_tokens=12", "training.max_steps=1", "backend.batch_size=8",
        "logger=none"]


def scored_as(res: dict, row: str) -> str:
    """The row whose generations scored `row`: a distilled row is System 1's when curation kept nothing, so that no
    model was trained (the distilled model is then the base model, s2d/stages/train.py)."""
    if row.startswith("distilled") and not res["stages"]["train"].get("trained", True):
        return "system1" + row[len("distilled"):]
    return row


def _inconsistent(recs) -> float:
    """The judge's verdict on the pair in order ab vs ba, read off the cached outputs: 1.0 unless the swapped verdict
    is the original one swapped (an unparsed verdict counts as inconsistent)."""
    from s2d.tasks.mtbench_judge import SWAP, VERDICT

    verdict = {r["item"].rsplit("-", 1)[1]: (VERDICT.findall(r["output"].upper()) or [None])[-1] for r in recs}
    assert sorted(verdict) == ["ab", "ba"], verdict
    ab, ba = verdict["ab"], verdict["ba"]
    return 0.0 if ab is not None and ba is not None and SWAP[ba] == ab else 1.0


def assert_tokens_sum_over_calls(recs, calls_per_record=None):
    for r in recs:
        assert r["tokens"] == sum(c["tokens"] for c in r["calls"])
        if calls_per_record:
            assert calls_per_record(r), [c["step"] for c in r["calls"]]


def test_s2a_with_usc_on_triviaqa_sycophancy(s2d, cache_dir):
    _, res, _ = s2d("task=triviaqa_sycophancy", "technique=s2a", "filter=usc", "filter.samples_per_input=3",
                    "filter.fallback_sizes=[3,2]", "filter.max_new_tokens=16", "data.test_size=8",
                    "technique.steps.0.max_new_tokens=24", "technique.steps.1.max_new_tokens=16", *TINY)
    for row in ("system1", "system2", "distilled"):
        assert res[row]["n_biased"] == 7 and res[row]["n_unbiased"] == 1
        assert res[row]["accuracy_biased"] is not None
    assert res["system2"]["calls_per_input"] == 2
    assert res["curation"]["filter"] == "usc" and res["curation"]["samples_per_input"] == 3
    assert_tokens_sum_over_calls(records(cache_dir, "train"), lambda r: [c["step"] for c in r["calls"]] ==
                                 ["rewrite", "respond"])
    # One USC call per unlabeled input, over all 3 of its samples (every 3-answer prompt fits the context).
    samples = {}
    for r in records(cache_dir, "train"):
        samples.setdefault(r["item"], []).append(r["output"])
    usc = records(cache_dir, "usc")
    assert sorted(r["item"] for r in usc) == sorted(samples) and len(usc) == 3
    for r in usc:
        prompt = r["calls"][0]["prompt"]
        assert "3 answers have been provided" in prompt
        assert all(f"Answer {i}: {out.strip()}" in prompt for i, out in enumerate(samples[r["item"]], 1)), prompt


@pytest.mark.parametrize("merge", ["llm", "sum"])
def test_bsm_with_perturbation_on_mtbench_judge(s2d, cache_dir, merge):
    _, res, _ = s2d("task=mtbench_judge", "technique=bsm", f"technique.merge={merge}", "filter=perturbation",
                    "data.test_size=1", "task.answers_per_question=1", "task.answer_max_new_tokens=16",
                    "technique.max_criteria=2", "technique.branch.max_new_tokens=32",
                    "technique.solve.max_new_tokens=8", "technique.merge_llm.max_new_tokens=16", *TINY)
    for row in ("system1", "system2", "distilled"):   # the one test pair, judged in both orders
        assert res[row]["n"] == 2 and res[row]["pairs"] == 1
        assert res[row]["inconsistent"] == _inconsistent(records(cache_dir, f"eval-{scored_as(res, row)}")), row
        assert res[row]["label_source"].startswith("proxy")
    merge_calls = 1 if merge == "llm" else 0
    for label in ("train", "train-perturbed", "eval-system2"):
        assert_tokens_sum_over_calls(records(cache_dir, label), lambda r: (
            r["calls"][0]["step"] == "branch"
            and 1 <= sum(c["step"].startswith("solve:") for c in r["calls"]) <= 2
            and len(r["calls"]) == 1 + sum(c["step"].startswith("solve:") for c in r["calls"]) + merge_calls))
    perturbed = records(cache_dir, "train-perturbed")
    assert len(perturbed) == 3 and all(r["item"].endswith("~swap") for r in perturbed)


def test_gsm8k_fewshot_cot_with_maj_at_k(s2d):
    _, res, _ = s2d("task=gsm8k", "technique=cot_fewshot", "task.fewshot_k=1", "filter=majority",
                    "filter.samples_per_input=2", "data.test_size=3", "eval.votes=[1,2]",
                    "technique.steps.0.max_new_tokens=24", *TINY)
    for row in ("system1", "system2", "distilled"):
        maj = res[row]["majority"]
        assert set(maj) == {"maj@1", "maj@2"}
        assert maj["maj@2"]["tokens_per_input"] >= maj["maj@1"]["tokens_per_input"] > 0


def test_coin_flip_prompt_variants(s2d, cache_dir):
    proc, res, _ = s2d("task=coin_flip", "technique=rar_1step", "filter=none", "data.test_size=4",
                       "eval.prompt_variants=true", "technique.steps.0.max_new_tokens=16", *TINY)
    assert set(res["variants"]) == {"system1@flip_means_reverse", "system1@flip_means_reverse_yes_no",
                                    "distilled@flip_means_reverse", "distilled@flip_means_reverse_yes_no"}
    coin_flip = build("task", _compose(["task=coin_flip"]).task)
    for name, metrics in res["variants"].items():   # each row scored its own prompt: recount from its records
        recs = records(cache_dir, f"eval-{scored_as(res, name)}")
        suffix = "Flip means reverse." if name.endswith("@flip_means_reverse") else \
            "Flip means reverse. Answer the Yes or No question."
        assert len(recs) == 4 and all(suffix in r["calls"][0]["prompt"] for r in recs), name
        unparsed = sum(coin_flip.extract(r["output"]) is None for r in recs)
        assert metrics["unparsed_rate"] == unparsed / 4, name
    assert "distilled@flip_means_reverse" in proc.stdout
