"""End to end on the real embedded model: results.json, the printed table, W&B, caching, every technique."""
import pytest

from tests.helpers.wandb_log import offline_summary
from tests.integration.conftest import tiny_args

pytestmark = pytest.mark.integration

SCHEMA = {
    "run": {"name", "model", "technique", "task", "filter", "training", "seed", "git_sha", "started", "wall_s"},
    "system1": {"accuracy", "tokens_per_input", "n", "unparsed"},
    "system2": {"accuracy", "tokens_per_input", "n", "unparsed", "calls_per_input"},
    "distilled": {"accuracy", "tokens_per_input", "n", "unparsed"},
    "curation": {"inputs", "samples_per_input", "kept", "kept_fraction", "target_accuracy"},
}


def test_end_to_end_then_rerun_is_fully_cached(s2d, tmp_path):
    broad = ["benchmarks=quick", "benchmarks.tasks=[arc_easy,piqa]", "benchmarks.limit=4"]
    proc, results, run_dir = s2d(*tiny_args("rar_2step", "majority", samples=2), *broad)
    for block, keys in SCHEMA.items():
        assert keys <= set(results[block]), (block, set(results[block]))
    assert set(results["stages"]) == {"generate", "curate", "train", "evaluate", "broad"}
    for bench in ("arc_easy", "piqa"):
        assert {"base", "distilled", "delta", "stderr", "regressed"} <= set(results["broad"][bench])
        assert results["broad"][bench]["n"] == 4
    assert results["stages"]["generate"]["generated"] == 4 * 2          # 4 inputs x 2 samples
    assert results["system2"]["calls_per_input"] == 2                    # 2-step RaR: two calls per input
    assert results["system1"]["n"] == results["distilled"]["n"] == 4
    assert "System 2 (rar_2step)" in proc.stdout and "distilled System 1" in proc.stdout
    assert "resolved config" in proc.stdout
    assert (run_dir / "distill_set.json").exists() and (run_dir / ".hydra" / "config.yaml").exists()

    # The offline W&B run mirrors results.json.
    summary = offline_summary(run_dir)
    for block in ("system1", "system2", "distilled", "curation"):
        for key, value in results[block].items():
            assert summary[f"{block}/{key}"] == value, (block, key)
    assert summary["broad/arc_easy/delta"] == results["broad"]["arc_easy"]["delta"]
    assert summary["samples/nrows"] == 4

    # The same config again: no stage recomputes, no System 2 generation.
    _, again, _ = s2d(*tiny_args("rar_2step", "majority", samples=2), *broad)
    assert all(stage["cached"] for stage in again["stages"].values()), again["stages"]
    assert again["stages"]["generate"]["generated"] == 0
    for row in ("system1", "system2", "distilled", "curation", "broad"):
        assert again[row] == results[row]


def test_lora_adapter_is_evaluated_unmerged(s2d, models_dir):
    from peft import PeftModel

    from s2d.backends.base import Sampling
    from s2d.backends.hf import HFGenerator

    _, results, run_dir = s2d(*tiny_args("system1", "none", extra=["backend=hf"]), "logger=none")
    checkpoint = (run_dir / "checkpoint").resolve()
    assert (checkpoint / "adapter_config.json").exists() and not (checkpoint / "model.safetensors").exists()
    base_dir = str(models_dir / "smollm2-135m-instruct")
    gen = HFGenerator(base_dir, adapter_path=str(checkpoint), batch_size=2)
    assert isinstance(gen.model, PeftModel)
    assert any("lora_A" in name for name, _ in gen.model.named_parameters())
    out = gen.generate(["Say hi."], Sampling(max_new_tokens=4), progress=False)
    assert len(out) == 1 and 0 < out[0].tokens <= 4


@pytest.mark.parametrize("technique,filt,training,backend", [
    ("cot", "none", "full", "vllm"),       # the full fine-tune's weights reloaded into the running engine
    ("rar_1step", "gold", "lora", "hf"),   # the reference backend end to end
    ("system1", "majority", "lora", "vllm"),
])
def test_every_technique_filter_and_training_runs(s2d, technique, filt, training, backend):
    _, results, _ = s2d(*tiny_args(technique, filt), f"training={training}", f"backend={backend}", "logger=none")
    assert results["run"]["technique"] == technique and results["run"]["training"] == training
    assert results["curation"]["samples_per_input"] == (2 if filt == "majority" else 1)
    for row in ("system1", "system2", "distilled"):
        assert 0.0 <= results[row]["accuracy"] <= 1.0 and results[row]["tokens_per_input"] > 0
    if filt == "gold":
        assert results["curation"]["target_accuracy"] in (None, 1.0)   # only correct targets survive
