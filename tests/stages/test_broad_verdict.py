from s2d.stages.broad import verdict


def _scores(values):
    return {"metric": "acc,none", "score": sum(values) / len(values), "stderr": 0.1,
            "per_item": {str(i): float(v) for i, v in enumerate(values)}}


def test_paired_delta_and_stderr():
    base, dist = _scores([1, 1, 1, 1, 0, 0, 0, 0]), _scores([1, 1, 1, 0, 0, 0, 0, 0])
    v = verdict(base, dist, sigma=2.0)
    assert v["delta"] == -0.125 and v["n"] == 8
    assert abs(v["stderr"] - 0.125) < 1e-12          # diffs: one -1, seven 0 -> sd 0.3536 / sqrt(8)
    assert v["regressed"] is False                      # -0.125 is one stderr, not two


def test_clear_regression_is_flagged():
    base, dist = _scores([1] * 20), _scores([1] * 5 + [0] * 15)
    v = verdict(base, dist, sigma=2.0)
    assert v["delta"] == -0.75 and v["regressed"] is True


def test_identical_models_are_not_regressed():
    s = _scores([1, 0, 1, 0])
    v = verdict(s, s, sigma=2.0)
    assert v["delta"] == 0 and v["stderr"] == 0 and v["regressed"] is False


def test_improvement_is_never_a_regression():
    v = verdict(_scores([0] * 10), _scores([1] * 10), sigma=2.0)
    assert v["delta"] == 1.0 and v["regressed"] is False


def test_lm_eval_gets_its_own_multi_device_options_from_benchmarks_devices(monkeypatch, tmp_path):
    """`benchmarks.devices` reaches lm-eval's model constructors as lm-eval's own options (the constructors are
    recorded, not run: which arguments s2d passes is the logic under test), and stays out of the scores' key."""
    from lm_eval.models import huggingface
    from omegaconf import OmegaConf

    from s2d.stages import broad
    from tests.test_config import _compose
    seen = {}
    monkeypatch.setattr(huggingface, "HFLM", lambda **kw: seen.setdefault("hf", kw))
    broad.make_lm("m", None, "float32", 4, devices={"parallelize": True})
    assert seen["hf"]["parallelize"] is True and seen["hf"]["pretrained"] == "m"

    import sys
    import types

    import lm_eval.models

    from s2d.backends import in_process_vllm_env
    for key, value in in_process_vllm_env().items():   # make_vllm_lm sets them: restored after the test
        monkeypatch.setenv(key, value)
    stub = types.SimpleNamespace(VLLM=lambda **kw: seen.setdefault("vllm", kw))
    monkeypatch.setitem(sys.modules, "lm_eval.models.vllm_causallms", stub)
    monkeypatch.setattr(lm_eval.models, "vllm_causallms", stub, raising=False)
    broad.make_vllm_lm("m", None, "float32", False, 0,
                       devices={"tensor_parallel_size": 8, "data_parallel_size": 2, "max_model_len": 8192})
    assert {k: seen["vllm"][k] for k in ("tensor_parallel_size", "data_parallel_size", "max_model_len")} == \
        {"tensor_parallel_size": 8, "data_parallel_size": 2, "max_model_len": 8192}

    cfg = _compose(["benchmarks=quick"])
    plan = broad.make_plan(tmp_path, cfg.benchmarks, 0)
    other = OmegaConf.merge(cfg.benchmarks, {"devices": {"tensor_parallel_size": 8, "parallelize": True}})
    assert broad.make_plan(tmp_path, other, 0) == plan   # where the model runs does not change its scores
