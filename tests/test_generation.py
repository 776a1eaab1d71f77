from omegaconf import OmegaConf

from s2d.generation import run_technique_cached
from s2d.tasks.base import Item
from s2d.techniques.chain import Chain
from tests.fakes import ScriptedGenerator, fake_service


def _echo():
    return Chain(OmegaConf.create({"impl": "chain", "name": "echo",
                                   "steps": [{"name": "a", "template": "{question}", "max_new_tokens": 4}]}))


def test_cache_reuses_records_only_for_the_same_input(tmp_path):
    gen = ScriptedGenerator(lambda p: f"re: {p}")
    ctx = fake_service(tmp_path, gen)
    first = run_technique_cached(ctx, "t", _echo(), [Item("x", "one", ""), Item("y", "two", "")], 1, 0.0, 1.0, {})
    assert first.generated == 2
    again = run_technique_cached(ctx, "t", _echo(), [Item("x", "one", ""), Item("y", "two", "")], 1, 0.0, 1.0, {})
    assert again.generated == 0 and again.records["y"][0]["output"] == "re: two"
    # same id, different input (a split that depends on the sizes): regenerated, never served stale
    changed = run_technique_cached(ctx, "t", _echo(), [Item("x", "one", ""), Item("y", "THREE", "")], 1, 0.0, 1.0, {})
    assert changed.generated == 1 and changed.records["y"][0]["output"] == "re: THREE"


def test_a_damaged_record_is_dropped_named_and_regenerated_alone(tmp_path, capsys):
    gen = ScriptedGenerator(lambda p: f"re: {p}")
    service = fake_service(tmp_path, gen)
    items = [Item(f"i{k}", f"question {k}", "") for k in range(5)]
    first = run_technique_cached(service, "t", _echo(), items, 2, 0.7, 1.0, {})
    assert first.generated == 10 and len(gen.prompts) == 10
    lines = first.path.read_text().splitlines()
    lines[4] = lines[4][:20] + "\x07 disk error" + lines[4][40:]   # a record in the middle: item i2, sample 0
    first.path.write_text("\n".join(lines) + "\n")
    gen.prompts.clear()
    again = run_technique_cached(service, "t", _echo(), items, 2, 0.7, 1.0, {})
    out = capsys.readouterr().out
    assert f"{first.path}: 1 damaged record(s) dropped (line 5)" in out
    # Exactly the damaged item-sample is generated again, nothing else.
    assert gen.prompts == ["question 2"] and again.generated == 1
    assert again.records["i2"][0]["output"] == "re: question 2"
    assert {k: v for k, v in again.records.items() if k != "i2"} == \
        {k: v for k, v in first.records.items() if k != "i2"}
    gen.prompts.clear()
    assert run_technique_cached(service, "t", _echo(), items, 2, 0.7, 1.0, {}).generated == 0
    assert "damaged" not in capsys.readouterr().out
