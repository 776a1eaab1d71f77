"""`make bench`'s training rows: LoRA SFT tokens/s of three recipes on the same examples, each in a fresh process.

    .venv/bin/python benchmarks/bench.py --only-training [--training-models qwen2_5_coder_0_5b smollm2_135m]

Recipes (same examples, same order, same batch of 8, same LoRA r16 / alpha 32 / dropout 0.05 on every linear layer):
- trl_defaults: what a user would write instead: `SFTTrainer(model=path, args=SFTConfig(...defaults...),
  peft_config=...)` on the same prompt-completion rows (TRL's defaults: lr 2e-5, gradient checkpointing on), but
  fp32 where this CPU's bf16 matmul is slower than fp32 (TRL's default bf16 autocast; see `bf16_is_faster`);
- s2d@ff65992: s2d's training stage as of commit ff65992 (its file read from git), the demo's settings (lr 3e-4);
- s2d: s2d's training process now (s2d/training.py), the same settings.
Examples: the demo's unlabeled pool (task=addition_sycophancy, data.seed 0, 110 inputs like the demo's kept set) with
the target in the form S2A's kept answers most often take (`45 + 31 = 76`, see experiments/embedded_demo), so that
the rows need no System 2 run. Each recipe trains `--training-steps` optimizer steps; the first step (allocations,
thread start) is left out of tokens/s.
tokens_per_s: non-padding tokens (TRL's `num_tokens`) per second of steps 2..N. floor_tokens_per_s: the matmul
probe's FLOP/s over the FLOPs a LoRA step needs per token: 2 x the body's weights forward + 2 x backward (input
gradients only: the base weights are frozen), and the LM head only where the loss is (its share of positions);
attention scores and LoRA's own rank-16 products left out (< 2% here). matmul_fraction = tokens_per_s / floor.
final_loss: the last step's training loss (every recipe sees the same batches in the same order).
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ("trl_defaults", "s2d@ff65992", "s2d")
BASELINE_COMMIT = "ff65992"
EXAMPLES, BATCH = 110, 8
DEMO_TRAINING = {"learning_rate": 3.0e-4}   # conf/experiment/demo.yaml's training overrides


def examples(n: int = EXAMPLES) -> list[dict]:
    """The demo's first `n` pool inputs with `a + b = c` targets (the System 1 prompt is the item's question)."""
    from omegaconf import OmegaConf

    from s2d.registry import build
    task_cfg = OmegaConf.load(ROOT / "conf" / "task" / "addition_sycophancy.yaml")
    task_cfg.pop("defaults", None)
    task_cfg.prompts = OmegaConf.load(ROOT / "conf" / "task" / "prompts" / "rar_fig3.yaml")
    train, _ = build("task", task_cfg).splits(0, n, 1)
    out = []
    for item in train:
        a, b = re.search(r"(\d+) \+ (\d+)", item.question).groups()
        out.append({"prompt": item.question, "target": f"{a} + {b} = {int(a) + int(b)}"})
    return out


def s2d_training_config(steps: int) -> dict:
    from omegaconf import OmegaConf
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "training" / "lora.yaml"))
    return {**cfg, **DEMO_TRAINING, "max_steps": steps, "save_steps": 0, "batch_size": BATCH, "grad_accum": 1}


def baseline_module():
    """s2d/stages/train.py as of BASELINE_COMMIT, imported from git under a name of its own."""
    text = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:s2d/stages/train.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="s2d-bench-")) / "train_ff65992.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("s2d_train_ff65992", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StepTimer:
    """A transformers callback: wall time of each optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.seconds.append(time.perf_counter() - timer.start)

        self.seconds, self.start, self.callback = [], 0.0, Callback()


def timed_trainer_class(timer: StepTimer):
    """trl.SFTTrainer with the step timer attached, patched where the recipes look it up."""
    import trl

    class Timed(trl.SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(timer.callback)

    return Timed


def run_recipe(recipe: str, model_path: str, steps: int, out_dir: str) -> dict:
    """Train `steps` steps with one recipe in this process; the trainer's log history and step times."""
    import trl
    timer = StepTimer()
    trainer_class = timed_trainer_class(timer)
    rows = examples()
    if recipe == "trl_defaults":
        from datasets import Dataset
        from peft import LoraConfig
        lora = s2d_training_config(steps)["lora"]
        data = Dataset.from_list([{"prompt": [{"role": "user", "content": e["prompt"]}],
                                   "completion": [{"role": "assistant", "content": e["target"]}]} for e in rows])
        trainer = trainer_class(
            model=model_path, train_dataset=data,
            args=trl.SFTConfig(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=BATCH,
                               logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, seed=0,
                               data_seed=0, bf16=bf16_is_faster()),
            peft_config=LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]),
                                   lora_dropout=float(lora["dropout"]), target_modules=lora["target_modules"],
                                   task_type="CAUSAL_LM"))
        trainer.train()
    else:
        module = baseline_module() if recipe == "s2d@ff65992" else importlib.import_module("s2d.training")
        module.SFTTrainer = trainer_class          # the stage imports it inside fit(): patch the source too
        trl.SFTTrainer = trainer_class
        spec = {"model_path": model_path, "trust_remote_code": False, "training": s2d_training_config(steps),
                "seed": 0, "examples": rows, "target": str(Path(out_dir) / "checkpoint")}
        trainer, *_ = module.fit(spec, dict(spec["training"]))
    steps_logged = [h for h in trainer.state.log_history if "loss" in h and "num_tokens" in h]
    return {"step_seconds": timer.seconds, "log": steps_logged}


def bf16_is_faster() -> bool:
    """TRL's own default is bf16 autocast (`bf16=True`); on a CPU without AVX512-BF16/AMX bf16 matmuls run at ~1
    GFLOP/s (bench.py's probe), where a Qwen-0.5B step of TRL's default did not finish in 5 minutes (2026-12-06,
    AMD EPYC): there the row keeps fp32, as a user would after one look at the first step."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import matmul_gflops
    return matmul_gflops("bfloat16", 512, 0.5) > matmul_gflops("float32", 512, 0.5)


def flops_per_token(model_path: str, loss_share: float) -> float:
    """LoRA training FLOPs per token: body 4 x weights (forward + input gradients), LM head at the loss positions."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path))
    head = model.get_output_embeddings().weight.numel()
    body = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n) - head
    return 4 * body + 4 * head * loss_share


def loss_share(model_path: str) -> float:
    """The share of an example's tokens that carry loss (the answer and its end-of-turn), with this chat template."""
    from transformers import AutoTokenizer

    from s2d.training import example_tokens
    tok = AutoTokenizer.from_pretrained(model_path)
    total = answer = 0
    for e in examples():
        head = tok.apply_chat_template([{"role": "user", "content": e["prompt"]}], tokenize=False,
                                       add_generation_prompt=True)
        n_full, n_head = example_tokens(tok, e), len(tok(head, add_special_tokens=False)["input_ids"])
        total, answer = total + n_full, answer + n_full - n_head
    return answer / total


def summarize(recipe: str, model: str, result: dict, flops: float, gflops: float) -> dict:
    log, seconds = result["log"], result["step_seconds"]
    tokens = log[-1]["num_tokens"] - log[0]["num_tokens"]
    rate = tokens / sum(seconds[1:])
    floor = gflops * 1e9 / flops
    return {"recipe": recipe, "model": model, "steps": len(seconds), "tokens_per_s": round(rate, 1),
            "floor_tokens_per_s": round(floor, 1), "matmul_fraction": round(rate / floor, 3),
            "s_per_step": round(sum(seconds[1:]) / (len(seconds) - 1), 2),
            "final_loss": round(float(log[-1]["loss"]), 5), "losses": [round(float(h["loss"]), 5) for h in log]}


def measure(recipe: str, model: str, steps: int, gflops: float) -> dict:
    """One recipe in a fresh process (`bench.py --one-training`), summarized."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--one-training", recipe,
                               model, "--training-steps", str(steps), "--out", out.name])
        if proc.returncode != 0:
            return {"recipe": recipe, "model": model, "error": f"exit code {proc.returncode}"}
        result = json.loads(Path(out.name).read_text())
    return summarize(recipe, model, result, result["flops_per_token"], gflops)


def one(recipe: str, model: str, steps: int, out: str) -> None:
    """The child process: train and write the raw result (with the FLOPs per token of this model and data)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import model_path
    path = model_path(model)
    with tempfile.TemporaryDirectory(prefix="s2d-bench-train-") as tmp:
        result = run_recipe(recipe, path, steps, tmp)
    result["flops_per_token"] = flops_per_token(path, loss_share(path))
    Path(out).write_text(json.dumps(result))


def markdown(rows: list[dict]) -> list[str]:
    lines = ["", "## Training: LoRA SFT steps on the demo's examples (benchmarks/training_bench.py)", "",
             "| model | recipe | tokens/s | s/step | floor tokens/s | matmul fraction | final loss | vs s2d@ff65992 |",
             "|---|---|---|---|---|---|---|---|"]
    base = {r["model"]: r["tokens_per_s"] for r in rows if r.get("recipe") == "s2d@ff65992" and "tokens_per_s" in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['recipe']} | error: {r['error']} | | | | | |")
            continue
        ratio = f"{r['tokens_per_s'] / base[r['model']]:.2f}x" if r["model"] in base else ""
        lines.append(f"| {r['model']} | {r['recipe']} | {r['tokens_per_s']} | {r['s_per_step']} | "
                     f"{r['floor_tokens_per_s']} | {r['matmul_fraction']:.1%} | {r['final_loss']} | {ratio} |")
    return lines
