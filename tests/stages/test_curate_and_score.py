from omegaconf import OmegaConf

from s2d.filters.base import Pool
from s2d.filters.basic import Majority
from s2d.stages.curate import curate
from s2d.stages.evaluate import score
from tests.tasks.test_last_letter import task


def _pool(outputs_by_item):
    return Pool(_records(outputs_by_item))


def _records(outputs_by_item):
    return {i: [{"output": o, "tokens": 5, "calls": [{"step": "a"}, {"step": "b"}]} for o in outs]
            for i, outs in outputs_by_item.items()}


def test_curate_keeps_majority_answers_only_and_reports_target_accuracy():
    t = task()
    items = t.splits(0, 3, 1)[0]
    outs = {items[0].id: [items[0].answer] * 3 + ["zz"],          # right majority
            items[1].id: ["qq"] * 3 + [items[1].answer],          # wrong majority
            items[2].id: ["aa", "bb", "cc", "dd"]}                # no majority
    filt = Majority(OmegaConf.create({"impl": "majority", "name": "majority", "samples_per_input": 4,
                                      "temperature": 0.7, "top_p": 0.95, "min_share": 0.5}))
    data = curate(t, filt, items, _pool(outs))
    assert [e["id"] for e in data["examples"]] == [items[0].id, items[1].id]
    assert data["examples"][0]["target"] == items[0].answer
    assert data["examples"][0]["prompt"] == items[0].question        # System 1 prompt: the bare question
    assert data["stats"]["kept"] == 2 and abs(data["stats"]["kept_fraction"] - 2 / 3) < 1e-9
    assert data["stats"]["target_accuracy"] == 0.5


def test_score_counts_accuracy_unparsed_tokens_and_calls():
    t = task()
    items = t.splits(0, 1, 3)[1]
    outs = {items[0].id: [f"Final answer: {items[0].answer}"], items[1].id: ["..."], items[2].id: ["xyz"]}
    m = score(t, items, _records(outs))["metrics"]
    assert m["accuracy"] == 1 / 3 and m["unparsed"] == 1 and m["n"] == 3
    assert m["tokens_per_input"] == 5 and m["calls_per_input"] == 2


def test_ablation_filters_reuse_the_same_samples():
    """ablations=[none, gold]: the run's N samples, curated by `none` (first sample, no check) and `gold`."""
    from s2d.registry import build
    from s2d.stages.curate import ablation_filter_cfg
    t = task()
    items = t.splits(0, 2, 1)[0]
    outs = {items[0].id: ["zz", items[0].answer, items[0].answer, items[0].answer],
            items[1].id: ["qq", "qq", "rr", "ss"]}
    main = OmegaConf.create({"impl": "majority", "name": "majority", "samples_per_input": 4, "temperature": 0.7,
                             "top_p": 0.95, "min_share": 0.5})
    none = curate(t, build("filter", ablation_filter_cfg(main, "none")), items, _pool(outs))
    assert [e["answer"] for e in none["examples"]] == ["zz", "qq"] and none["stats"]["samples_per_input"] == 4
    gold = curate(t, build("filter", ablation_filter_cfg(main, "gold")), items, _pool(outs))
    assert [e["id"] for e in gold["examples"]] == [items[0].id] and gold["stats"]["uses_gold_labels"]


def test_an_ablation_is_its_own_filter_option_with_the_run_filters_sampling():
    """ablations=[usc] under filter=majority: USC's own keys (its template) from conf/filter/usc.yaml, majority's
    samples, schema-valid; checked with the run's config before any model loads."""
    from s2d.stages import curate as stage
    from tests.test_config import _compose
    cfg = _compose(["filter=majority", "ablations=[usc]"])
    usc = stage.ablation_filter_cfg(cfg.filter, "usc")
    assert usc.impl == "usc" and "FINAL" in usc.template and "min_share" not in usc
    assert [usc[k] for k in stage.SAMPLING] == [cfg.filter[k] for k in stage.SAMPLING]
    stage.check(cfg)


def test_target_template_can_hold_the_system2_output():
    from s2d.filters.basic import NoFilter
    t = task()
    t.cfg = OmegaConf.merge(t.cfg, {"target_template": "{output}"})
    items = t.splits(0, 1, 1)[0]
    filt = NoFilter(OmegaConf.create({"impl": "none", "name": "none", "samples_per_input": 1, "temperature": 0.0,
                                      "top_p": 1.0}))
    data = curate(t, filt, items, _pool({items[0].id: [f"  The answer is {items[0].answer}. "]}))
    assert data["examples"][0]["target"] == f"The answer is {items[0].answer}."


def test_majority_vote_metrics_at_k():
    from s2d.stages.evaluate import majority_metrics
    from s2d.votes import majority_vote
    assert majority_vote(["a", "b", "b", None]) == "b"
    assert majority_vote(["a", "b"]) == "a" and majority_vote([None]) is None
    t = task()
    items = t.splits(0, 1, 1)[1]
    right = items[0].answer
    recs = {items[0].id: [{"output": o, "tokens": 10} for o in ["zz", right, right, "zz", "qq"]]}
    m = majority_metrics(t, items, recs, [1, 3, 5])
    assert m["maj@1"] == {"accuracy": 0.0, "tokens_per_input": 10}
    assert m["maj@3"] == {"accuracy": 1.0, "tokens_per_input": 30}
    assert m["maj@5"]["accuracy"] == 0.0 and m["maj@5"]["tokens_per_input"] == 50   # zz 2 : right 2, zz first


def test_run_level_target_overrides_the_tasks_template_and_picks_the_shortest_agreeing_output():
    """`target.template='{answer}'` distils the bare answer from the same records, `target.pick=shortest` the
    shortest output that agrees with the kept answer; a bad template is one clear line."""
    import pytest

    from s2d.errors import UserError, check_target_template
    t = task()
    t.cfg = OmegaConf.merge(t.cfg, {"target_template": "{output}"})
    items = t.splits(0, 1, 1)[0]
    a = items[0].answer
    outs = {items[0].id: [f"After thinking it over carefully, the answer is {a}.", "The answer is zz.",
                          f"The answer is {a}."]}
    filt = Majority(OmegaConf.create({"impl": "majority", "name": "majority", "samples_per_input": 3,
                                      "temperature": 0.7, "top_p": 0.95, "min_share": 0.5}))
    assert curate(t, filt, items, _pool(outs))["examples"][0]["target"] == outs[items[0].id][0]
    assert curate(t, filt, items, _pool(outs), template="{answer}")["examples"][0]["target"] == a
    assert curate(t, filt, items, _pool(outs), pick="shortest")["examples"][0]["target"] == f"The answer is {a}."
    check_target_template("target.template", "Answer: {answer}")
    with pytest.raises(UserError, match=r"target.template='\{anwser\}'.*\{answer\}"):
        check_target_template("target.template", "{anwser}")


def test_curation_diagnostics_show_agreement_uncertainty_and_target_precision():
    from s2d.stages.curate import diagnostics
    t = task()
    items = t.splits(0, 3, 1)[0]
    outs = {items[0].id: [items[0].answer] * 4,                    # unanimous: margin 1, entropy 0
            items[1].id: ["qq", "qq", "rr", items[1].answer],       # 2 vs 1: margin 1/4, entropy 1.5 bits
            items[2].id: ["aa", "bb", "aa", "bb"]}                  # a tie: margin 0, entropy 1 bit
    filt = Majority(OmegaConf.create({"impl": "majority", "name": "majority", "samples_per_input": 4,
                                      "temperature": 0.7, "top_p": 0.95, "min_share": 0.5}))
    records = _records(outs)
    data = curate(t, filt, items, Pool(records))
    d = diagnostics(t, items, records, 4, data["examples"])
    assert d["vote_margin"] == (1 + 0.25 + 0) / 3
    assert abs(d["answer_entropy_bits"] - (0 + 1.5 + 1) / 3) < 1e-12
    lo, hi = d["target_accuracy_ci95"]   # kept: items 0 (right) and 1 (qq, wrong): 1 of 2
    assert lo < 0.5 < hi
