"""The training process: TRL's SFTTrainer on the distillation set (loss on the answer only), LoRA through PEFT or a
full fine-tune, resumable from its last checkpoint, retried at half the batch on out-of-memory; the finished model
is published into the cache atomically. Started by the train stage (s2d/stages/train.py, through s2d/launch.py):

    python -m s2d.training SPEC.json      # or under `accelerate launch` workers
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from s2d.launch import die_with_parent, training_dtype


def train(spec: dict) -> None:
    """Fine-tune, retrying at half the batch size (twice the accumulation: the same effective batch) when a batch
    does not fit in memory, then move the finished model into the cache atomically."""
    from s2d.backends.base import is_out_of_memory
    from s2d.cache import atomic_write_json, publish_folder

    cfg, target = dict(spec["training"]), Path(spec["target"])
    while True:
        try:
            trainer, result, last, tokenizer = fit(spec, cfg)
            break
        except RuntimeError as e:   # torch.OutOfMemoryError is one
            if not is_out_of_memory(e) or int(cfg["batch_size"]) == 1:
                raise
            cfg["batch_size"], cfg["grad_accum"] = int(cfg["batch_size"]) // 2, int(cfg["grad_accum"]) * 2
            print(f"[s2d] out of memory training; retrying at training.batch_size={cfg['batch_size']} "
                  f"x grad_accum={cfg['grad_accum']} (the same effective batch)", flush=True)
            _free_gpu_memory()
    staging = staging_folder(target) / "out"
    trainer.save_model(str(staging))       # every process takes part (FSDP gathers); the main one writes
    if not trainer.accelerator.is_main_process:
        return
    tokenizer.save_pretrained(str(staging))
    atomic_write_json(staging / "s2d_train.json", {"method": cfg["method"], "examples": len(spec["examples"]),
                                                   "steps": result.global_step, "train_loss": result.training_loss,
                                                   "resumed_from_step": int(last.name.split("-")[-1]) if last else 0,
                                                   "batch_size": int(cfg["batch_size"]),
                                                   "grad_accum": int(cfg["grad_accum"]),
                                                   "log_history": trainer.state.log_history})
    publish_folder(staging, target, "s2d_train.json")   # the checkpoint appears complete or not at all
    shutil.rmtree(staging_folder(target), ignore_errors=True)


def staging_folder(target: Path) -> Path:
    # Every process of a multi-process run writes to the same staging folder name, so it must not be random.
    return target.parent / f".{target.name}.staging"


def fit(spec: dict, cfg: dict):
    """One training attempt with batch size and accumulation from `cfg`: (trainer, result, resumed-from, tok)."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from s2d.export import trl_row

    examples, target = spec["examples"], Path(spec["target"])
    on_gpu = torch.cuda.is_available()
    # Conversational prompt-completion rows (the run folder's distill_set.jsonl, s2d/export.py): TRL applies the
    # tokenizer's chat template exactly as generation does and puts the loss on the completion (the answer) only.
    data = Dataset.from_list([{k: row[k] for k in ("prompt", "completion")} for row in map(trl_row, examples)])
    tokenizer = AutoTokenizer.from_pretrained(spec["model_path"])
    max_length = fitting_max_length(tokenizer, examples, int(cfg["max_length"]))
    bf16 = training_dtype(str(cfg.get("dtype", "auto")), on_gpu) == "bfloat16"
    peft_config = None
    if cfg["method"] == "lora":
        from peft import LoraConfig
        lora = cfg["lora"]
        peft_config = LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
                                 target_modules=lora["target_modules"], task_type="CAUSAL_LM")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging_root = staging_folder(target)
    reporting = start_training_run(spec.get("wandb"))
    steps_per_epoch = -(-len(examples) // (int(cfg["batch_size"]) * int(cfg["grad_accum"])))
    total = int(cfg["max_steps"]) if int(cfg["max_steps"]) > 0 else steps_per_epoch * int(cfg["epochs"])
    # The arguments first: building them starts the distributed state (the process group of an `accelerate
    # launch` worker, DeepSpeed's ZeRO-3 flag), which the model's loading must see to take FSDP's rank-0-only
    # loading and ZeRO-3's partitioned init instead of a full copy per process.
    args = SFTConfig(
        output_dir=str(staging_root / "trainer"), seed=int(spec["seed"]), data_seed=int(spec["seed"]),
        num_train_epochs=float(cfg["epochs"]), max_steps=int(cfg["max_steps"]),
        per_device_train_batch_size=int(cfg["batch_size"]), gradient_accumulation_steps=int(cfg["grad_accum"]),
        learning_rate=float(cfg["learning_rate"]), warmup_steps=int(round(float(cfg["warmup_ratio"]) * total)),
        max_length=max_length, completion_only_loss=True,
        gradient_checkpointing=False,   # TRL turns it on by default; it costs ~25% on small models
        bf16=bf16, use_cpu=not on_gpu, dataloader_pin_memory=on_gpu,
        logging_steps=max(1, total // 10), report_to=["wandb"] if reporting else "none",
        # Checkpoints (weights, optimizer, scheduler, RNG, step) in the staging folder, whose name is the key's:
        # a killed run's successor with the same key resumes from the last one instead of from step 0.
        save_strategy="steps" if int(cfg.get("save_steps") or 0) > 0 else "no",
        save_steps=int(cfg.get("save_steps") or 0) or 500, save_total_limit=1)
    model = load_model(spec, torch.bfloat16 if bf16 else torch.float32)
    score_labelled_positions_only()
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=peft_config)
    if reporting:   # first, so that W&B's callback (TRL's reporting) logs the rate with the loss
        trainer.callback_handler.callbacks.insert(0, throughput_callback())
    last = last_checkpoint(staging_root / "trainer")
    if last:
        print(f"[s2d] training resumes from {last} (step {last.name.split('-')[-1]} of {total})", flush=True)
    try:
        result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    finally:
        if reporting:
            finish_training_run()
    return trainer, result, last, tokenizer


def start_training_run(settings: dict | None) -> bool:
    """On the main process, the W&B run the training curves go to (s2d/tracking.py JobLog.training_run); TRL's
    W&B callback then reports loss, learning rate, grad norm, tokens and steps into it. False where there is
    none or it cannot start (one warning line: the training goes on without curves)."""
    if not settings or int(os.environ.get("RANK", "0")) != 0:
        return False
    try:
        import wandb
        wandb.init(**settings["init"], settings=wandb.Settings(silent=True,
                                                               init_timeout=float(settings["init_timeout"])))
        return True
    except Exception as e:
        print(f"[s2d] WARNING: no W&B training curves ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
              flush=True)
        return False


def finish_training_run() -> None:
    try:
        import wandb
        wandb.finish()
    except Exception as e:
        print(f"[s2d] WARNING: W&B could not finish the training run ({type(e).__name__})", flush=True)


def throughput_callback():
    """A trainer callback adding `tokens_per_s` (TRL's `num_tokens` over wall time since the last log) to each log."""
    import time

    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.last = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "num_tokens" not in logs:
                return
            now = time.perf_counter()
            if self.last is not None and now > self.last[1]:
                logs["tokens_per_s"] = (logs["num_tokens"] - self.last[0]) / (now - self.last[1])
            self.last = (logs["num_tokens"], now)
    return Throughput()


def load_model(spec: dict, dtype):
    """The model to train, loaded once the distributed state exists; says which state it saw (the order matters:
    `fit`), so a worker's log shows it."""
    import time

    import torch.distributed as dist
    from transformers import AutoModelForCausalLM
    group = dist.is_available() and dist.is_initialized()
    state = (f"process group {dist.get_backend()} up, rank {dist.get_rank()} of {dist.get_world_size()}" if group
             else "one process, no process group")
    print(f"[s2d] training: {state}; loading the model", flush=True)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(spec["model_path"], dtype=dtype, use_safetensors=True,
                                                 trust_remote_code=spec["trust_remote_code"])
    after = f" after the process group {dist.get_backend()} up" if group else ""
    print(f"[s2d] training: model loaded{after} ({time.perf_counter() - start:.1f}s)", flush=True)
    return model


def score_labelled_positions_only() -> None:
    """Make TRL's fused LM head project only the positions that carry loss (the answer's ~12 of ~65 tokens), as it
    already does on CUDA/XPU. Elsewhere TRL projects every position through the 151,936-word head (so that a
    compiling device such as Neuron sees fixed tile shapes); nothing compiles the step here. Same loss to the last
    digit, 1.8x the tokens/s of a LoRA step on the 2-core AMD EPYC (Qwen-0.5B and SmolLM2: benchmarks/RESULTS.md).
    TRL reads the flag at each forward from `trl.trainer.utils._use_triton`; the kernels keep their own copy."""
    import trl.trainer.utils as trl_utils
    decide = getattr(trl_utils, "_use_triton", None)
    if decide is None:
        print("[s2d] WARNING: this TRL has no trl.trainer.utils._use_triton; its LM head may score every position "
              "(slower, same loss)", flush=True)
        return
    if not getattr(decide, "s2d_compact", False):
        compact = lambda device: device.type == "cpu" or decide(device)   # noqa: E731
        compact.s2d_compact, compact.s2d_original = True, decide
        trl_utils._use_triton = compact


def _free_gpu_memory() -> None:
    import gc

    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete `checkpoint-<step>` a killed run left (transformers writes `trainer_state.json` last)."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def fitting_max_length(tokenizer, examples: list[dict], configured: int) -> int:
    """`training.max_length`, raised to the longest prompt + target: truncation would cut the target (the only
    part with loss) and TRL would then drop the example, e.g. judge prompts holding two long responses."""
    longest = max(example_tokens(tokenizer, e) for e in examples)
    if longest > configured:
        print(f"[s2d] training.max_length={configured} < longest example ({longest} tokens); using {longest}",
              flush=True)
    return max(configured, longest)


def example_tokens(tokenizer, example: dict) -> int:
    """Tokens of one training example: prompt + target in the chat template, as TRL tokenizes it."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": example["prompt"]},
                                          {"role": "assistant", "content": example["target"]}], tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


if __name__ == "__main__":   # the training process (or an `accelerate launch` worker): python -m s2d.training SPEC
    import json
    import sys
    die_with_parent()   # a worker's parent is torchrun's agent; a lone training's, s2d
    train(json.loads(Path(sys.argv[1]).read_text()))
