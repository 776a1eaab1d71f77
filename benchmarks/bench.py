"""`make bench`: generation engines side by side on this machine, written to benchmarks/.

    .venv/bin/python benchmarks/bench.py [--models smollm2_135m qwen2_5_coder_0_5b] [--engines hf vllm] [--demo]
    .venv/bin/python benchmarks/bench.py --only-demo      # `make demo`'s run only, cold then warm
    .venv/bin/python benchmarks/bench.py --only-training  # the training rows only (benchmarks/training_bench.py)

For each model and engine, in a fresh process each (so one engine's threads or memory never slow the next):
- startup_s: from nothing to a generator ready to serve (model load; for vLLM the engine start);
- greedy: 64 chain-of-thought prompts (paper Fig. 10 on last-letter inputs), <= 128 new tokens, one call;
- sampled: 16 of those prompts x 4 samples (T 0.7, top-p 0.95: the majority filter's defaults), one call;
- greedy_lora (--lora-models): 8 prompts, <= 64 new tokens, by the model with a random LoRA adapter, after the
  adapter is loaded (HF: unmerged; vLLM: merged into the running engine; vllm_lora_request: vLLM's LoRA support).
Engines go through s2d's own backends (`backend=hf` with batch 64, `backend=vllm` as configured: torch.compile and
32-token KV blocks on CPU, and `vllm_eager`: the same with `enforce_eager=true`), with `dtype: auto`. vLLM's
startup_s includes loading its compiled model from ~/.cache/vllm; the first start after a change compiles (~2 min).
useful_tok_s counts generated tokens up to the end of turn (what s2d records), divided by the call's wall time.
A 1024^3 matmul probe gives this CPU's FLOP/s per dtype; compute_bound_fraction = useful_tok_s / (FLOP/s /
(2 x parameters)), the share of the rate a purely compute-bound decoder would reach.
With --demo (or --only-demo), `make demo`'s run (both seeds) also runs twice on a fresh stage cache (cold, then
all cached); --only-demo keeps the generation rows of the last full run.
Results: benchmarks/results.json and benchmarks/RESULTS.md, overwritten each run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import cpu_flags, cpu_name, matmul_gflops, model_path  # noqa: E402

GREEDY_PROMPTS, SAMPLED_PROMPTS, SAMPLES, MAX_NEW_TOKENS = 64, 16, 4, 128
LORA_PROMPTS, LORA_NEW_TOKENS = 8, 64   # small: vLLM's unmerged LoRA path on CPU runs at a few tok/s


def prompts(n: int) -> list[str]:
    from omegaconf import OmegaConf

    from s2d.tasks.names_data import name_splits
    template = OmegaConf.load(ROOT / "conf" / "technique" / "cot.yaml").steps[0].template
    groups, _ = name_splits(0, 2, n, 1)
    return [template.format(question=f'Take the last letters of the words in "{" ".join(g)}" and concatenate them.')
            for g in groups[:n]]


def parameters(path: str) -> int:
    """Parameters that each generated token multiplies through (tied embeddings counted once), from the config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())


def random_adapter(path: str, out_dir: str) -> str:
    """A LoRA adapter (r 16, every linear layer) with random weights: it changes the outputs, as a trained one does."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path)
    get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                                     task_type="CAUSAL_LM")).save_pretrained(out_dir)
    return out_dir


def measure_one(engine: str, model: str, lora: bool, overrides: list[str] = ()) -> list[dict]:
    """Runs in its own process: start the engine, warm it up, time greedy and sampled generation; with `lora`, also
    greedy generation by the model with a LoRA adapter (HF: unmerged; vLLM: merged into the engine, or vLLM's LoRA
    support with `vllm_lora_request`)."""
    from omegaconf import OmegaConf

    from s2d.backends import make_generator
    from s2d.backends.base import Sampling, resolve_dtype
    cfg = OmegaConf.load(ROOT / "conf" / "backend" / f"{engine.split('_')[0]}.yaml")
    if engine == "hf":
        cfg.batch_size = GREEDY_PROMPTS
    if engine == "vllm_eager":   # no torch.compile: what s2d ran before, and what lm-eval's vllm model runs on CPU
        cfg.enforce_eager = True
    if engine == "vllm_lora_request":
        cfg.lora_mode = "request"
    cfg.merge_with(OmegaConf.from_dotlist(list(overrides)))   # --set key=value (levers tried by hand)
    path = model_path(model)
    start = time.perf_counter()
    gen = make_generator(cfg, path)
    startup = time.perf_counter() - start
    gen.generate(prompts(2), Sampling(max_new_tokens=4), progress=False)   # warm-up: first-call allocations
    rows = []
    modes = [("greedy", prompts(GREEDY_PROMPTS), Sampling(MAX_NEW_TOKENS)),
             ("sampled", [p for p in prompts(SAMPLED_PROMPTS) for _ in range(SAMPLES)],
              Sampling(MAX_NEW_TOKENS, temperature=0.7, top_p=0.95))]
    if engine == "vllm_lora_request":
        modes = []
    if lora:
        tmp = tempfile.mkdtemp(prefix="s2d-bench-lora-")
        adapter = random_adapter(path, tmp)
        modes.append(("greedy_lora", prompts(LORA_PROMPTS), Sampling(LORA_NEW_TOKENS)))
    for mode, texts, sampling in modes:
        swap = None
        if mode == "greedy_lora":
            start = time.perf_counter()
            if hasattr(gen, "use_weights"):
                gen.use_weights(adapter, "lora")
            else:   # HF: a model per checkpoint, the adapter unmerged (what `backend=hf` does)
                gen = make_generator(cfg, path, adapter, "lora")
            swap = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        outs = gen.generate(texts, sampling, seed=1, desc=f"{engine}/{model}/{mode}")
        secs = time.perf_counter() - start
        tokens = sum(o.tokens for o in outs)
        rows.append({"engine": engine, "model": model, "mode": mode, "dtype": resolve_dtype(str(cfg.dtype)),
                     "sequences": len(texts), "useful_tokens": tokens, "seconds": round(secs, 2),
                     "useful_tok_s": round(tokens / secs, 1), "startup_s": round(startup, 1),
                     **({"weights_load_s": swap} if swap is not None else {})})
        print(f"{engine:5s} {model:20s} {mode:8s} {rows[-1]['useful_tok_s']:7.1f} tok/s "
              f"(startup {startup:.0f}s)", flush=True)
    if hasattr(gen, "close"):
        gen.close()
    if lora:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def measure(engine: str, model: str, lora: bool) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run([sys.executable, __file__, "--one", engine, model, "--out", out.name,
                               *(["--lora"] if lora else [])])
        if proc.returncode != 0:
            return [{"engine": engine, "model": model, "error": f"exit code {proc.returncode}"}]
        return json.loads(Path(out.name).read_text())


DEMO_RESULTS = ROOT / "experiments" / "embedded_demo" / "results" / "demo"
DEMO = ["-m", "experiment=demo", "seed=0", "hydra.sweep.dir=outputs/demo", "logger=none"]   # = `make demo`


def demo_stage_times(extra_args: list[str]) -> dict:
    """`make demo`'s run on a fresh stage cache and a fresh models folder (the embedded model's conversion
    included), then again (every stage cached)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="s2d-bench-") as tmp:
        env = {**os.environ, "S2D_CACHE_DIR": str(Path(tmp) / "cache"), "WANDB_MODE": "disabled",
               "S2D_MODELS_DIR": str(Path(tmp) / "models")}   # cold: the embedded model's conversion too
        for phase in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "s2d", *DEMO, *extra_args], cwd=tmp, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([sys.executable, "-m", "s2d.report", "outputs/demo", "--out", "outputs/demo/report"],
                           cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            paths = sorted(Path(tmp).glob("outputs/demo/*/results.json"))
            runs = [json.loads(p.read_text()) for p in paths]
            if phase == "cold":
                from s2d.results import format_table
                out["table"] = "\n\n".join(format_table(r) for r in runs)
                for path, run in zip(paths, runs):   # the file behind the README's demo numbers
                    DEMO_RESULTS.mkdir(parents=True, exist_ok=True)
                    (DEMO_RESULTS / f"seed{run['run']['seed']}.json").write_text(path.read_text())
            out[phase] = {"wall_s": round(wall, 1), "runs": [
                {"seed": r["run"]["seed"], "stages": {k: {"wall_s": v["wall_s"], "cached": v["cached"]}
                                                      for k, v in r["stages"].items()}} for r in runs]}
            print(f"demo {phase}: {wall:.0f}s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["smollm2_135m", "qwen2_5_coder_0_5b"])
    ap.add_argument("--engines", nargs="+", default=["hf", "vllm", "vllm_eager"],
                    help="hf, vllm (the default config: torch.compile), vllm_eager (enforce_eager=true)")
    ap.add_argument("--demo", action="store_true", help="also time `make demo`'s run cold and warm")
    ap.add_argument("--only-demo", action="store_true", help="time the demo only (no generation rows)")
    ap.add_argument("--eager-models", nargs="*", default=["smollm2_135m"],
                    help="models on which engine vllm_eager runs")
    ap.add_argument("--lora-models", nargs="*", default=["smollm2_135m"],
                    help="models on which the distilled-model path is timed too (a random LoRA adapter: HF unmerged, "
                         "vLLM merged into the engine, vLLM's LoRA support as engine vllm_lora_request)")
    ap.add_argument("--lora", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only-training", action="store_true", help="the training rows only")
    ap.add_argument("--training-models", nargs="*", default=["qwen2_5_coder_0_5b", "smollm2_135m"],
                    help="models of the training rows ([] = none)")
    ap.add_argument("--training-steps", type=int, default=8, help="optimizer steps per training recipe")
    ap.add_argument("--one-training", nargs=2, metavar=("RECIPE", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="with --one: backend config overrides, e.g. --set block_size=32")
    ap.add_argument("demo_args", nargs="*", default=[], help="overrides for the demo run")
    args = ap.parse_args()
    if args.one_training:
        import training_bench
        training_bench.one(*args.one_training, args.training_steps, args.out)
        return
    if args.one:
        Path(args.out).write_text(json.dumps(measure_one(*args.one, lora=args.lora, overrides=args.set)))
        return

    import torch
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
              "machine": {"cpu": cpu_name(), "flags": cpu_flags(), "cores": len(os.sched_getaffinity(0)),
                          "python": platform.python_version(), "torch": torch.__version__},
              "command": " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]])}
    record["matmul_gflops"] = {d: round(matmul_gflops(d), 1) for d in ("float32", "bfloat16")}
    print(f"matmul 1024^3: {record['matmul_gflops']} GFLOP/s", flush=True)
    rows = []
    only = args.only_demo or args.only_training
    for model in ([] if only else args.models):
        try:
            n_params = parameters(model_path(model))
        except Exception as e:   # e.g. the Qwen GGUF packages are not installed
            rows.append({"model": model, "error": f"{type(e).__name__}: {e}"})
            print(f"skip {model}: {e}", flush=True)
            continue
        lora = model in args.lora_models
        engines = [e for e in args.engines if e != "vllm_eager" or model in args.eager_models]
        if lora and "vllm" in engines:
            engines.append("vllm_lora_request")
        for engine in engines:
            for row in measure(engine, model, lora and engine != "vllm_eager"):
                if "useful_tok_s" in row:
                    ceiling = record["matmul_gflops"][row["dtype"]] * 1e9 / (2 * n_params)
                    row.update(parameters=n_params, compute_bound_tok_s=round(ceiling, 1),
                               compute_bound_fraction=round(row["useful_tok_s"] / ceiling, 3))
                rows.append(row)
    record["generation"] = rows
    record["speedup"] = speedups(rows)
    if not args.only_demo:
        import training_bench
        record["training"] = [training_bench.measure(recipe, model, args.training_steps,
                                                     record["matmul_gflops"]["float32"])
                              for model in args.training_models for recipe in training_bench.RECIPES]
        for row in record["training"]:
            print(json.dumps(row), flush=True)
    if args.demo or args.only_demo:
        record["demo"] = demo_stage_times(args.demo_args)
    if only:   # keep the other rows of the last run beside the new ones, with the date each was measured
        previous = json.loads((ROOT / "benchmarks" / "results.json").read_text())
        kept = ("training",) if args.only_demo else ("demo",)
        kept += ("generation", "speedup")
        for key in kept:
            if key in previous:
                record[key] = previous[key]
                record[f"{key}_measured"] = previous.get(f"{key}_measured", previous["date"])
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    (ROOT / "benchmarks" / "RESULTS.md").write_text(markdown(record))
    print(markdown(record))


def speedups(rows: list[dict]) -> dict:
    """vLLM useful tok/s over HF's, per model and mode."""
    rate = {(r["engine"], r["model"], r["mode"]): r["useful_tok_s"] for r in rows if "useful_tok_s" in r}
    return {f"{e}/{m}/{mode}": round(rate[(e, m, mode)] / rate[("hf", m, mode)], 2)
            for (e, m, mode) in rate if e != "hf" and ("hf", m, mode) in rate}


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Benchmarks ({r['date']})", "",
             f"Machine: **{m['cpu']}** ({', '.join(m['flags']) or 'no AVX2'}), {m['cores']} cores, torch {m['torch']}, "
             f"Python {m['python']}. Command: `{r['command']}`.", "",
             f"Matmul probe (1024^3): fp32 {r['matmul_gflops']['float32']} GFLOP/s, "
             f"bf16 {r['matmul_gflops']['bfloat16']} GFLOP/s.", "",
             *[f"Kept from an earlier run: the {key} rows, measured {r[key + '_measured']} (their own probe).\n"
               for key in ("generation", "training", "demo") if key + "_measured" in r],
             f"## Generation: {GREEDY_PROMPTS} CoT prompts greedy / {SAMPLED_PROMPTS} prompts x {SAMPLES} samples, "
             f"<= {MAX_NEW_TOKENS} new tokens (greedy_lora: {LORA_PROMPTS} prompts, <= {LORA_NEW_TOKENS})", "",
             "| engine | model | mode | dtype | useful tok/s | startup s | compute-bound tok/s | fraction |",
             "|---|---|---|---|---|---|---|---|"]
    for g in r["generation"]:
        if "error" in g:
            lines.append(f"| {g.get('engine', '')} | {g['model']} | error: {g['error']} | | | | | |")
            continue
        load = f" (+{g['weights_load_s']} s to load the adapter)" if "weights_load_s" in g else ""
        lines.append(f"| {g['engine']} | {g['model']} | {g['mode']} | {g['dtype']} | {g['useful_tok_s']} | "
                     f"{g['startup_s']}{load} | {g['compute_bound_tok_s']} | {g['compute_bound_fraction']:.1%} |")
    if r["speedup"]:
        lines += ["", "Useful tok/s over HF's: " + ", ".join(f"{k} **{v}x**" for k, v in r["speedup"].items())]
    if r.get("training"):
        import training_bench
        lines += training_bench.markdown(r["training"])
    if "demo" in r:
        stages = list(r["demo"]["cold"]["runs"][0]["stages"])
        lines += ["", "## `make demo` wall time per stage, s (fresh stage cache and models folder: the conversion "
                  "is in the total; then again)", "",
                  "| run | seed | total (s2d + s2d-report) | " + " | ".join(stages) + " |",
                  "|---|---|---|" + "---|" * len(stages)]
        for phase in ("cold", "warm"):
            d = r["demo"][phase]
            for run in d["runs"]:
                lines.append(f"| {phase} | {run['seed']} | {d['wall_s']} | " + " | ".join(
                    f"{s['wall_s']}{' (cached)' if s['cached'] else ''}" for s in run["stages"].values()) + " |")
        lines += ["", "The cold run's tables:", "", "```", r["demo"]["table"], "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
