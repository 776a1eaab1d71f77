"""End to end on the real embedded model: results.json, the printed table, W&B, caching, every technique."""
import re

import pytest
from omegaconf import OmegaConf

from s2d.export import read_distill_set
from tests.helpers.wandb_log import offline_summary
from tests.integration.conftest import records, tiny_args

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
    proc, results, run_dir = s2d(*tiny_args("rar_2step", "majority", samples=2), *broad, "eval.compute_matched=true")
    for block, keys in SCHEMA.items():
        assert keys <= set(results[block]), (block, set(results[block]))
    assert set(results["stages"]) == {"generate", "curate", "train", "evaluate", "broad"}
    for bench in ("arc_easy", "piqa"):
        assert {"base", "distilled", "delta", "ci95", "p_holm", "verdict", "detectable_drop"} <= \
            set(results["broad"][bench])
        assert results["broad"][bench]["n"] == 4 and results["broad"][bench]["verdict"] == "inconclusive"
    # System 1 sampled k times, k x its tokens closest to System 2's, on the same items; every pair compared.
    matched, s1, s2 = results["system1_matched"], results["system1"], results["system2"]
    assert matched["k"] == max(1, round(s2["tokens_per_input"] / s1["tokens_per_input"])) and matched["n"] == 4
    assert {"system2 - system1", "distilled - system1", "distilled - system2", "system2 - system1_matched",
            "distilled - system1_matched"} <= set(results["comparisons"])
    d = results["comparisons"]["distilled - system1"]
    assert d["delta"] == pytest.approx(results["distilled"]["accuracy"] - s1["accuracy"])
    assert d["ci95"][0] <= d["delta"] <= d["ci95"][1] and 0 <= d["p"] <= 1
    assert results["stages"]["generate"]["generated"] == 4 * 2          # 4 inputs x 2 samples
    assert results["system2"]["calls_per_input"] == 2                    # 2-step RaR: two calls per input
    assert results["system1"]["n"] == results["distilled"]["n"] == 4
    assert "System 2 (rar_2step)" in proc.stdout and "distilled System 1" in proc.stdout
    assert "resolved config" in proc.stdout
    # System 1 and System 2 print before training starts, with what is still to come.
    before_training = proc.stdout.split("[s2d] stage train ...")[0]
    for row in ("system1", "system2", "system1_matched"):
        assert re.search(rf"{row} +accuracy {results[row]['accuracy']:6.1%}", before_training), row
    assert "still to come: training" in before_training
    # The run folder holds what was trained on and the config it ran with, both readable.
    # (This tiny vote may keep nothing: test_vllm.py's pipeline test reads back a distill set that holds inputs.)
    distill = read_distill_set(run_dir / "distill_set.jsonl")
    assert results["curation"]["kept"] == len(distill)
    assert all(set(e) >= {"prompt", "target", "votes"} for e in distill)
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.technique.name == "rar_2step" and saved.filter.samples_per_input == 2

    # The offline W&B run mirrors results.json.
    summary = offline_summary(run_dir)
    for block in ("system1", "system2", "distilled", "curation"):
        for key, value in results[block].items():
            if key == "ci95":
                assert [summary[f"{block}/ci95_low"], summary[f"{block}/ci95_high"]] == value, block
                continue
            assert summary[f"{block}/{key}"] == value, (block, key)
    assert summary["broad/arc_easy/delta"] == results["broad"]["arc_easy"]["delta"]
    assert summary["samples/nrows"] == 4

    # The same config again: no stage recomputes, no System 2 generation.
    _, again, _ = s2d(*tiny_args("rar_2step", "majority", samples=2), *broad, "eval.compute_matched=true")
    assert all(stage["cached"] for stage in again["stages"].values()), again["stages"]
    assert again["stages"]["generate"]["generated"] == 0
    for row in ("system1", "system2", "system1_matched", "distilled", "curation", "broad", "comparisons"):
        assert again[row] == results[row]


def test_lora_adapter_is_evaluated_unmerged(lora_run, smollm2):
    from peft import PeftModel

    from s2d.backends.base import Sampling
    from s2d.backends.hf import HFGenerator

    _, run_dir = lora_run
    checkpoint = (run_dir / "checkpoint").resolve()
    assert (checkpoint / "adapter_config.json").exists() and not (checkpoint / "model.safetensors").exists()
    gen = HFGenerator(smollm2, adapter_path=str(checkpoint), batch_size=2)
    assert isinstance(gen.model, PeftModel)
    assert any("lora_A" in name for name, _ in gen.model.named_parameters())
    out = gen.generate(["Say hi."], Sampling(max_new_tokens=4), progress=False)
    assert len(out) == 1 and 0 < out[0].tokens <= 4


@pytest.mark.parametrize("technique,filt,backend", [
    ("rar_1step", "gold", "hf"),   # the reference backend end to end
    ("system1", "majority", "vllm"),
])
def test_every_technique_filter_and_backend_runs(s2d, cache_dir, technique, filt, backend):
    _, results, _ = s2d(*tiny_args(technique, filt), f"backend={backend}", "logger=none")
    assert results["run"]["technique"] == technique and results["run"]["training"] == "lora"
    assert results["curation"]["samples_per_input"] == (2 if filt == "majority" else 1)
    assert results["system2"]["n"] == results["distilled"]["n"] == 4
    # Tokens per input are the mean of what the cached records say the model generated.
    evaluated = records(cache_dir, "eval-system2")
    assert results["system2"]["tokens_per_input"] == pytest.approx(
        sum(r["tokens"] for r in evaluated) / len(evaluated))
    if filt == "gold":   # only targets whose System 2 answer matched the gold label survive
        kept = results["curation"]["kept"]
        assert results["curation"]["target_accuracy"] == (1.0 if kept else None)


def test_full_fine_tune_weights_are_served_and_change_the_answers(s2d, cache_dir):
    """training=full: the trained model folder (all weights, no adapter) is what vLLM serves for the distilled row,
    and a large learning rate makes its greedy answers differ from the base model's on the same prompts."""
    proc, results, run_dir = s2d(*tiny_args("cot", "none"), "training=full", "backend=vllm", "logger=none",
                                 "training.learning_rate=5e-3", "training.max_steps=2", "seed=3")
    assert results["run"]["training"] == "full"
    checkpoint = (run_dir / "checkpoint").resolve()
    assert (checkpoint / "model.safetensors").exists() and not (checkpoint / "adapter_config.json").exists()
    assert "vLLM now serves full weights" in proc.stdout
    assert proc.stdout.count("vLLM engine ready") == 1        # swapped into the running engine, not a new one
    base = {r["item"]: r for r in records(cache_dir, "eval-system1")}
    served = {r["item"]: r for r in records(cache_dir, "eval-distilled")}
    assert sorted(base) == sorted(served)
    assert all(served[i]["calls"][0]["prompt"] == base[i]["calls"][0]["prompt"] for i in base)
    assert any(served[i]["output"] != base[i]["output"] for i in base), "the full weights never reached the engine"
