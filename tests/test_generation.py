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
