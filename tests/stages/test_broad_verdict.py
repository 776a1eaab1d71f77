"""The broad block's verdicts (exact paired test, Holm over the benchmarks, regressed / held / inconclusive) and
the multi-device options passed to lm-eval."""
import pytest

from s2d.stages.broad import verdicts


def _scores(values):
    return {"metric": "acc,none", "score": sum(values) / len(values), "stderr": 0.1,
            "per_item": {str(i): float(v) for i, v in enumerate(values)}}


def test_ten_items_cannot_tell_a_15_point_drop_from_none():
    # The demo's block: 10 items, the distilled model loses two of them (a 20-point drop, not significant).
    base, dist = _scores([1] * 6 + [0] * 4), _scores([1] * 4 + [0] * 6)
    v = verdicts({"arc_easy": base}, {"arc_easy": dist}, margin=0.05)["arc_easy"]
    assert v["delta"] == pytest.approx(-0.2) and v["n"] == 10
    assert v["verdict"] == "inconclusive" and v["regressed"] is False
    assert v["ci95"][0] < -0.15 and v["p_holm"] == pytest.approx(0.5)   # 2 discordant items, both one way
    assert v["detectable_drop"] > 0.15   # 10 items cannot detect a 15-point drop at 80% power
    same = verdicts({"a": base}, {"a": base}, margin=0.05)["a"]
    assert same["delta"] == 0 and same["verdict"] == "inconclusive"   # no disagreement, but 10 items say little


def test_many_agreeing_items_hold_and_a_clear_drop_regresses():
    base = _scores([1] * 1200 + [0] * 800)
    held = _scores([1] * 1190 + [0] * 10 + [1] * 10 + [0] * 790)   # 10 lost, 10 gained
    v = verdicts({"piqa": base}, {"piqa": held}, margin=0.05)["piqa"]
    assert v["verdict"] == "held" and v["ci95"][0] > -0.05 and v["detectable_drop"] < 0.02
    dropped = _scores([1] * 1000 + [0] * 1000)
    assert verdicts({"piqa": base}, {"piqa": dropped}, margin=0.05)["piqa"]["verdict"] == "regressed"


def test_holm_keeps_a_borderline_drop_among_ten_benchmarks_from_being_called_a_regression():
    base = _scores([1] * 30 + [0] * 30)
    borderline = _scores([1] * 22 + [0] * 38)   # 8 lost, none gained: exact p = 2 / 256 = 0.0078
    alone = verdicts({"a": base}, {"a": borderline}, margin=0.05)["a"]
    assert alone["p_holm"] == pytest.approx(2 / 256) and alone["verdict"] == "regressed"
    block = verdicts({f"b{i}": base for i in range(10)}, {"b0": borderline, **{f"b{i}": base for i in range(1, 10)}},
                     margin=0.05)
    assert block["b0"]["p_holm"] == pytest.approx(10 * 2 / 256) and block["b0"]["verdict"] == "inconclusive"


def test_an_improvement_is_never_a_regression():
    v = verdicts({"a": _scores([0] * 10)}, {"a": _scores([1] * 10)}, margin=0.05)["a"]
    assert v["delta"] == 1.0 and v["verdict"] == "held"


def test_lm_eval_gets_its_own_multi_device_options_from_benchmarks_devices(monkeypatch, tmp_path):
    """`benchmarks.devices` reaches lm-eval's model constructors as lm-eval's own options (the constructors are
    recorded, not run: which arguments s2d passes is the logic under test), and stays out of the scores' key."""
    from lm_eval.models import huggingface
    from omegaconf import OmegaConf

    from s2d.backends import lm_eval_model
    from s2d.backends.vllm.cpu import cpu_env
    from s2d.backends.vllm.engine import on_cuda
    from s2d.stages import broad
    from tests.test_config import _compose
    seen = {}
    monkeypatch.setattr(huggingface, "HFLM", lambda **kw: seen.setdefault("hf", kw))
    lm_eval_model("hf", "m", None, "float32", 4, False, 0, {"parallelize": True})
    assert seen["hf"]["parallelize"] is True and seen["hf"]["pretrained"] == "m"

    import sys
    import types

    import lm_eval.models

    for key, value in ({} if on_cuda() else cpu_env({})).items():   # make_vllm_lm sets them: restored after
        monkeypatch.setenv(key, value)
    stub = types.SimpleNamespace(VLLM=lambda **kw: seen.setdefault("vllm", kw))
    monkeypatch.setitem(sys.modules, "lm_eval.models.vllm_causallms", stub)
    monkeypatch.setattr(lm_eval.models, "vllm_causallms", stub, raising=False)
    lm_eval_model("vllm", "m", None, "float32", 4, False, 0,
                  {"tensor_parallel_size": 8, "data_parallel_size": 2, "max_model_len": 8192})
    assert {k: seen["vllm"][k] for k in ("tensor_parallel_size", "data_parallel_size", "max_model_len")} == \
        {"tensor_parallel_size": 8, "data_parallel_size": 2, "max_model_len": 8192}

    cfg = _compose(["benchmarks=quick"])
    plan = broad.make_plan(tmp_path, cfg.benchmarks, 0)
    other = OmegaConf.merge(cfg.benchmarks, {"devices": {"tensor_parallel_size": 8, "parallelize": True}})
    assert broad.make_plan(tmp_path, other, 0) == plan   # where the model runs does not change its scores
