from omegaconf import OmegaConf

from s2d.curation.filters import Majority
from s2d.stages.curate import curate
from s2d.stages.evaluate import score
from tests.tasks.test_last_letter import task


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
    data = curate(t, filt, items, _records(outs))
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
