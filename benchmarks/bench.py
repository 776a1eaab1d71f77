"""`make bench`: generation throughput and the demo's per-stage wall time, written to benchmarks/.

    .venv/bin/python benchmarks/bench.py [--skip-demo] [--batches 1 8 32] [--dtypes float32 bfloat16]

Throughput: greedy decoding of exactly `--new-tokens` tokens per sequence (min_new_tokens forces full length,
so the number is the padded-batch rate), after one warm-up call, on the embedded SmolLM2-135M-Instruct.
Demo: `s2d experiment=demo benchmarks=quick` run twice on a fresh stage cache (cold: every stage computes; warm:
every stage cached); the cold run's broad table (base vs distilled on held-out benchmarks) is recorded too.
Results: benchmarks/results.json (machine-readable) and benchmarks/RESULTS.md (a table), overwritten each run.
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


def model_dir() -> str:
    from omegaconf import OmegaConf

    from s2d.backends.embedded import resolve_model_path
    from s2d.cli import default_cache_dir
    cfg = OmegaConf.load(ROOT / "conf" / "model" / "smollm2_135m.yaml")
    return resolve_model_path(cfg, os.environ.get("S2D_MODELS_DIR") or Path(default_cache_dir()) / "models")


def throughput(path: str, dtypes, batches, new_tokens: int, threads: int | None) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    prompt = tok.apply_chat_template([{"role": "user", "content": 'Take the last letters of the words in '
                                       '"Edgar Bob" and concatenate them.'}], tokenize=False, add_generation_prompt=True)
    rows = []
    for dtype in dtypes:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        for bs in batches:
            enc = tok([prompt] * bs, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
                start = time.perf_counter()
                model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=tok.pad_token_id)
                secs = time.perf_counter() - start
            rows.append({"dtype": dtype, "batch": bs, "new_tokens": new_tokens, "seconds": round(secs, 2),
                         "tokens_per_s": round(bs * new_tokens / secs, 1)})
            print(f"generation {dtype:9s} batch {bs:3d}: {rows[-1]['tokens_per_s']:7.1f} tok/s", flush=True)
        del model
    return rows


def demo_stage_times(extra_args: list[str]) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="s2d-bench-") as tmp:
        env = {**os.environ, "S2D_CACHE_DIR": str(Path(tmp) / "cache"), "WANDB_MODE": "disabled"}
        env.setdefault("S2D_MODELS_DIR", str(Path(model_dir()).parent))
        for phase in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "s2d", "experiment=demo", "logger=none", *extra_args], cwd=tmp,
                           env=env, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            results = json.loads(max(Path(tmp).glob("outputs/*/*/results.json"), key=os.path.getmtime).read_text())
            if phase == "cold":
                out["broad"] = results.get("broad", {})
                out["table"] = results_table(results)
            out[phase] = {"wall_s": round(wall, 1),
                          "stages": {k: {"wall_s": v["wall_s"], "cached": v["cached"]}
                                     for k, v in results["stages"].items()}}
            print(f"demo {phase}: {wall:.0f}s " + ", ".join(f"{k} {v['wall_s']:.0f}s"
                                                          for k, v in results["stages"].items()), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("demo_args", nargs="*", default=["benchmarks=quick"],
                    help="overrides for the demo run (default: benchmarks=quick)")
    args = ap.parse_args()

    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": {
        "cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]])}
    import torch
    record["machine"]["torch"] = torch.__version__
    record["machine"]["threads"] = args.threads or torch.get_num_threads()
    record["generation"] = throughput(model_dir(), args.dtypes, args.batches, args.new_tokens, args.threads)
    if not args.skip_demo:
        record["demo"] = demo_stage_times(args.demo_args)
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    (ROOT / "benchmarks" / "RESULTS.md").write_text(markdown(record))
    print(f"wrote {ROOT / 'benchmarks' / 'RESULTS.md'}")


def results_table(results: dict) -> str:
    from s2d.results import format_table
    return format_table(results)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Benchmarks ({r['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads), "
             f"Python {m['python']}. Command: `{r['command']}`", "",
             "## Generation throughput (SmolLM2-135M-Instruct, greedy, padded batch rate)", "",
             "| dtype | batch | tokens/s |", "|---|---|---|"]
    lines += [f"| {g['dtype']} | {g['batch']} | {g['tokens_per_s']} |" for g in r["generation"]]
    if "demo" in r:
        lines += ["", "## `s2d experiment=demo` wall time per stage (fresh stage cache, then again)", "",
                  "| run | total s | " + " | ".join(r["demo"]["cold"]["stages"]) + " |",
                  "|---|---|" + "---|" * len(r["demo"]["cold"]["stages"])]
        for phase in ("cold", "warm"):
            d = r["demo"][phase]
            lines.append(f"| {phase} | {d['wall_s']} | " + " | ".join(
                f"{s['wall_s']}{' (cached)' if s['cached'] else ''}" for s in d["stages"].values()) + " |")
        lines += ["", "The cold run's table:", "", "```", r["demo"]["table"], "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
