"""Stage 3, train: fine-tune the same model on input -> final answer (TRL SFT, loss on the answer only).

    s2d training=lora training.epochs=3        # or training=full

Phases: key -> cached? -> compute -> write -> return. The adapter (LoRA) or model folder (full) is trained in a
staging folder and renamed into the cache when complete; key = distillation-set key + model + training config.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from s2d import keys
from s2d.cache import keyed, once, plain
from s2d.errors import check_positive
from s2d.outputs import Trained


def check(cfg) -> None:
    check_positive("training.epochs", cfg.training.epochs)
    check_positive("training.batch_size", cfg.training.batch_size)
    check_positive("training.learning_rate", cfg.training.learning_rate)
    check_launch(cfg.training)


def run(ctx) -> Trained:
    curated = ctx.curated
    out = train_cached(ctx, curated.examples, curated.key, "checkpoint")
    out.ablations = {name: train_cached(ctx, a.examples, a.key, f"checkpoint.{name}")
                     for name, a in curated.ablations.items()}
    out.cached = out.cached and all(a.cached for a in out.ablations.values())
    return out


def checkpoint_key(ctx, distill_key: str) -> str:
    return keyed(ctx.cache_dir, keys.checkpoint(distill_key, ctx.model_identity["path"], ctx.cfg.training,
                                                int(ctx.cfg.seed)))


def train_cached(ctx, examples: list[dict], distill_key: str, link_name: str) -> Trained:
    cfg = ctx.cfg.training
    key = checkpoint_key(ctx, distill_key)
    target = Path(ctx.cache_dir) / "checkpoints" / key
    if not examples:
        print("[s2d] WARNING: curation kept no examples; nothing to train, the distilled model is the base model",
              flush=True)
        # `cached` means "redid no work": with nothing to train there is no work to redo.
        return Trained(path=None, key=key, cached=True, info={"key": key, "trained": False})

    def train() -> None:
        ctx.release_generator(for_training=True)   # free the generation model's GPU memory
        launch(train_spec(ctx, examples, target))

    cached = once(target, target / "s2d_train.json", train)
    _link(ctx.run_dir / link_name, target)
    return Trained(path=str(target), key=key, cached=cached, method=cfg.method,
                   info={"key": key, "trained": True, "examples": len(examples)})


# The share of the fp32 matmul probe's FLOP/s a LoRA step reaches on a CPU: turns a training's FLOPs into an
# expected wall time. Measured for s2d's recipe on the 2-core AMD EPYC (benchmarks/RESULTS.md, training): 55% on
# Qwen-0.5B, 31% on SmolLM2-135M (its smaller matrices); the estimate is for the larger models.
CPU_TRAINING_EFFICIENCY = 0.5


def expected_seconds(ctx) -> tuple[int, float | None]:
    """(optimizer steps, expected seconds) of the trainings still to do (the run's own set and each ablation's):
    FLOPs per token x tokens, over this CPU's matmul rate x CPU_TRAINING_EFFICIENCY; seconds None on a GPU."""
    import torch
    cfg, curated = ctx.cfg.training, ctx.curated
    sets = [s for s in (curated, *curated.ablations.values()) if s.examples
            and not (Path(ctx.cache_dir) / "checkpoints" / checkpoint_key(ctx, s.key) / "s2d_train.json").exists()]
    if not sets:
        return 0, 0.0
    per_step = int(cfg.batch_size) * int(cfg.grad_accum)
    steps = [int(cfg.max_steps) if int(cfg.max_steps) > 0 else -(-len(s.examples) // per_step) * int(cfg.epochs)
             for s in sets]
    if torch.cuda.is_available():
        return sum(steps), None
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(ctx.model_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(
            ctx.model_path, trust_remote_code=bool(ctx.cfg.model.get("trust_remote_code", False))))
    weights = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    # LoRA: forward + input gradients (frozen weights); full fine-tuning: + weight gradients.
    flops_per_token = (4 if cfg.method == "lora" else 6) * weights
    tokens = 0.0
    for s, n in zip(sets, steps):
        mean = sum(example_tokens(tokenizer, e) for e in s.examples) / len(s.examples)
        tokens += mean * n * per_step
    return sum(steps), tokens * flops_per_token / (matmul_flops() * CPU_TRAINING_EFFICIENCY)


def matmul_flops(size: int = 1024, repeats: int = 8) -> float:
    """fp32 FLOP/s of this process's cores on a dense matmul (benchmarks/bench.py's probe, shorter)."""
    import time

    import torch
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def training_dtype(name: str, on_gpu: bool) -> str:
    """`training.dtype`: auto = bf16 mixed precision on a GPU, fp32 on a CPU."""
    return ("bfloat16" if on_gpu else "float32") if name == "auto" else name


def train_spec(ctx, examples: list[dict], target: Path) -> dict:
    """Everything a training process needs, as plain JSON (it may run under `accelerate launch`)."""
    return {"model_path": ctx.model_path, "trust_remote_code": bool(ctx.cfg.model.get("trust_remote_code", False)),
            "training": plain(ctx.cfg.training), "seed": int(ctx.cfg.seed), "examples": examples,
            "target": str(target),
            # The training curves' W&B run (a run of the job's group, linked from the job's), or none.
            "wandb": ctx.log.training_run(target.name) if ctx.log is not None else None}


def launch(spec: dict) -> None:
    """A training process of its own: one (`python -m s2d.stages.train`), or with `training.num_processes > 1`
    `accelerate launch` workers (torchrun: DDP over NCCL on GPUs, gloo on CPU cores; FSDP / DeepSpeed from
    `training.accelerate_config`) for models too large for one GPU. Its own process, because glibc's allocator is
    configured at process start (`training_env`)."""
    import json
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    proc = None
    try:
        proc = start(spec["training"], f.name)
        if proc.wait() != 0:
            raise RuntimeError(f"the training process exited with {_exit_status(proc.returncode)}; run the same "
                               "command again to resume from its last checkpoint (training.save_steps="
                               f"{spec['training'].get('save_steps')})")
    finally:
        # Leaving early (a preempted Slurm job's SystemExit, Ctrl-C): stop the training now. PR_SET_PDEATHSIG
        # only fires once this process is gone, which its exit handlers (W&B's among them) delay by seconds, in
        # which an orphaned training could finish and publish while the requeued job starts on the same key.
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(f.name)


def _exit_status(code: int) -> str:
    import signal
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


def start(training: dict, spec_path: str, **popen):
    """Start the training process(es) for a spec file; it dies with this process (`PR_SET_PDEATHSIG`), and so do
    its workers (`die_with_parent` in theirs), so a killed run leaves no orphan training on to race its rerun."""
    import subprocess
    import sys
    n = int(training.get("num_processes") or 1)
    cmd = accelerate_command(training, spec_path, sys.executable) if n > 1 else \
        [sys.executable, "-m", "s2d.stages.train", spec_path]
    return subprocess.Popen(cmd, env=training_env(os.environ), preexec_fn=_death_signal_setter(), **popen)


def _death_signal_setter():
    """A function that asks the kernel to SIGKILL the calling process when its parent dies (Linux
    `prctl(PR_SET_PDEATHSIG)`), or one that does nothing elsewhere. Resolved here, not in the forked child: a
    `preexec_fn` must not import or allocate while other threads may hold those locks."""
    import ctypes
    import signal
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):   # not Linux: no such guard
        return lambda: None
    return lambda: prctl(1, int(signal.SIGKILL))   # 1 = PR_SET_PDEATHSIG


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent dies: torchrun's workers and a `python -m s2d.stages.train`
    child would otherwise outlive a SIGKILLed launcher or s2d run."""
    _death_signal_setter()()


def training_env(environ) -> dict:
    """The training process's environment: glibc malloc on transparent huge pages (`huge_pages_tunables`; the
    logits of a step are ~0.5 GB for Qwen-0.5B at batch 8)."""
    from s2d.backends.base import huge_pages_tunables
    return {**environ, "GLIBC_TUNABLES": huge_pages_tunables(environ)}


def accelerate_command(training: dict, spec_path: str, python: str, port: int | None = None) -> list[str]:
    """`accelerate launch` over `training.num_processes` workers on this node. Without an accelerate config, plain
    DDP through torchrun (accelerate's `--multi_gpu`, which on a machine without GPUs runs gloo over the CPU cores;
    without it accelerate would start one process and train alone). A free rendezvous port of its own, so that two
    trainings of a sweep on one node do not meet on torchrun's default 29500."""
    n = int(training["num_processes"])
    cmd = [python, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1",
           "--main_process_port", str(port or free_port())]
    config = training.get("accelerate_config")
    if config:
        cmd += ["--config_file", str(accelerate_config_path(config))]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if not _cuda_available():
        cmd += ["--num_cpu_threads_per_process", str(max(1, len(os.sched_getaffinity(0)) // n))]
    return cmd + ["-m", "s2d.stages.train", spec_path]


ACCELERATE_CONFIGS = ("fsdp", "deepspeed_zero3")   # shipped in s2d/accelerate_configs/


def accelerate_config_path(config: str) -> Path:
    path = Path(config)
    if not path.suffix:   # a shipped config by name
        path = Path(__file__).resolve().parent.parent / "accelerate_configs" / f"{config}.yaml"
    return path


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def check_launch(training, on_gpu: bool | None = None) -> None:
    """The one-line errors for a training launch that cannot work, before any generation runs."""
    from s2d.errors import UserError
    n = 1 if training.get("num_processes") is None else int(training["num_processes"])
    if n < 1:
        raise UserError(f"training.num_processes={n}: must be >= 1 (1 = one process, N = accelerate launch workers)")
    on_gpu = _cuda_available() if on_gpu is None else on_gpu
    given = training.get("dtype", "auto")
    dtype = training_dtype(str(given), on_gpu)
    if on_gpu:
        import torch
        gpus = torch.cuda.device_count()
        if n > gpus:
            raise UserError(f"training.num_processes={n} is more than the {gpus} GPU(s) of this machine "
                            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use at most "
                            f"{gpus}")
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise UserError(f"training.dtype={given} trains in bf16, which {torch.cuda.get_device_name(0)} does "
                            "not support; set training.dtype=float32")
    elif n > len(os.sched_getaffinity(0)):   # gloo runs any number of CPU processes: they share the cores
        print(f"[s2d] WARNING: training.num_processes={n} CPU processes share {len(os.sched_getaffinity(0))} "
              "core(s)", flush=True)
    config = training.get("accelerate_config")
    if config:
        check_accelerate_config(str(config), n, dtype, str(given), on_gpu)


def check_accelerate_config(config: str, n: int, dtype: str, given: str, on_gpu: bool) -> None:
    from s2d.errors import UserError
    path = accelerate_config_path(config)
    if not path.exists():
        raise UserError(f"training.accelerate_config={config}: no such file; use one of "
                        f"{', '.join(ACCELERATE_CONFIGS)} or a path to your own accelerate config YAML")
    import yaml
    launch_cfg = yaml.safe_load(path.read_text()) or {}
    kind = str(launch_cfg.get("distributed_type", ""))
    if kind not in ("FSDP", "DEEPSPEED"):
        return
    if n == 1:
        raise UserError(f"training.accelerate_config={config} ({kind}) needs training.num_processes > 1; "
                        "it is read only by accelerate launch")
    if not on_gpu:
        # accelerate turns FSDP / DeepSpeed on only for GPU-like devices: on CPU cores it would quietly train
        # plain DDP, a full copy of the model per process (README "At scale").
        raise UserError(f"training.accelerate_config={config} ({kind}) needs GPUs: on CPU cores accelerate would "
                        "train plain DDP with a full model copy per process; for DDP on CPU leave "
                        "training.accelerate_config unset (training.num_processes=N alone)")
    if str(launch_cfg.get("mixed_precision", "no")) == "bf16" and dtype != "bfloat16":
        # The launcher's ACCELERATE_MIXED_PRECISION would win over the trainer's arguments: bf16 all the same.
        raise UserError(f"training.dtype={given} trains in {dtype}, but training.accelerate_config={config} casts "
                        "to bf16 (mixed_precision: bf16); set training.dtype=bfloat16 (or auto), or give an "
                        "accelerate config with mixed_precision: no")


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


def _link(link: Path, target: Path) -> None:
    """Point the run folder at the cached checkpoint instead of copying hundreds of MB."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


if __name__ == "__main__":   # the training process (or an `accelerate launch` worker): python -m s2d.stages.train SPEC
    import json
    import sys
    die_with_parent()   # a worker's parent is torchrun's agent; a lone training's, s2d
    train(json.loads(Path(sys.argv[1]).read_text()))
