from types import SimpleNamespace

from omegaconf import OmegaConf

from s2d.outputs import Trained
from s2d.stages.evaluate import Row, plan_rows
from tests.test_config import _compose


def _ctx(trained, *overrides):
    cfg = _compose(["task=coin_flip", *overrides])
    return SimpleNamespace(cfg=cfg, technique=SimpleNamespace(cfg=OmegaConf.create({"name": "s2"})), trained=trained,
                           generator=lambda path=None: path)


def test_rows_base_first_then_each_trained_model_with_its_variants():
    trained = Trained(path="/ckpt", key="k", cached=True,
                      ablations={"none": Trained(path="/ckpt-none", key="kn", cached=True),
                                 "gold": Trained(path=None, key="kg", cached=True)})
    plans = plan_rows(_ctx(trained, "eval.prompt_variants=true"))
    names = [p.row.name for p in plans]
    variants = list(_compose(["task=coin_flip"]).task.prompt_variants)
    assert names == ["system1", "system2", *(f"system1@{v}" for v in variants), "distilled",
                     *(f"distilled@{v}" for v in variants), "distilled[none]", "distilled[gold]"]
    by_name = {p.row.name: p for p in plans}
    assert by_name["distilled"].checkpoint == "k" and by_name["distilled"].generator() == "/ckpt"
    assert by_name["distilled[gold]"].same_as == Row("system1")         # nothing kept: scored as the base model
    assert by_name[f"distilled@{variants[0]}"].row == Row("distilled", None, variants[0])


def test_nothing_trained_every_distilled_row_is_its_base_twin():
    plans = plan_rows(_ctx(Trained(path=None, key="k", cached=True)))
    assert [(p.row.name, p.same_as and p.same_as.name) for p in plans] == [
        ("system1", None), ("system2", None), ("distilled", "system1")]


def test_sampled_rows_follow_the_run_seed_over_a_pinned_data_seed(tmp_path):
    """maj@k samples are drawn with the run seed: with `data.seed` pinned (as `make demo` pins it), seed 1 must get
    samples of its own, not read seed 0's from the cache; the same seed again reads its own back unchanged. (A
    generator whose reply is its sampling seed: the logic of the cache keys, not a model.)"""
    from s2d.backends.base import Completion
    from s2d.registry import build
    from s2d.stages.evaluate import RowPlan, score_rows
    from s2d.techniques.chain import system1_technique
    from tests.fakes import ScriptedGenerator, fake_service

    class SeededGenerator(ScriptedGenerator):
        def generate(self, prompts, sampling, seed=0, prefill="", desc="", progress=True):
            self.prompts += prompts
            return [Completion(f"Heads {seed}", 2) for _ in prompts]

    def sampled_records(seed: int, gen) -> dict:
        cfg = _compose(["task=coin_flip", f"seed={seed}", "data.seed=0", "eval.votes=[1,3]", "data.test_size=3"])
        task = build("task", cfg.task)
        ctx = SimpleNamespace(cfg=cfg, task=task, test_items=task.splits(0, 2, 3)[1], model_identity={"path": "m"},
                              service=fake_service(tmp_path, gen, seed=seed))
        score_rows(ctx, [RowPlan(Row("system1"), system1_technique(cfg.task, 8))])
        files = sorted(tmp_path.glob("generations/eval-system1-sampled-*/records.jsonl"))
        return {f.parent.name: f.read_text() for f in files}

    gen = SeededGenerator(lambda p: "")
    first = sampled_records(0, gen)
    both = sampled_records(1, gen)
    assert len(first) == 1 and len(both) == 2                   # seed 1 sampled anew, under a key of its own
    (seed1,) = set(both) - set(first)
    assert both[seed1] != first[next(iter(first))]             # ... and its samples differ
    asked = len(gen.prompts)
    assert sampled_records(0, gen) == both and len(gen.prompts) == asked   # seed 0 again: its own, from the cache
