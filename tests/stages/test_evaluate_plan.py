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
    assert by_name["distilled"].key_extra == {"checkpoint": "k"} and by_name["distilled"].generator() == "/ckpt"
    assert by_name["distilled[gold]"].same_as == Row("system1")         # nothing kept: scored as the base model
    assert by_name[f"distilled@{variants[0]}"].row == Row("distilled", None, variants[0])


def test_nothing_trained_every_distilled_row_is_its_base_twin():
    plans = plan_rows(_ctx(Trained(path=None, key="k", cached=True)))
    assert [(p.row.name, p.same_as and p.same_as.name) for p in plans] == [
        ("system1", None), ("system2", None), ("distilled", "system1")]
