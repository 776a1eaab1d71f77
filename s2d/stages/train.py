"""Stage 3, train: fine-tune the same model on input -> final answer (TRL SFT, loss on the answer only).

    s2d training=lora training.epochs=3        # or training=full

Phases: key -> cached? -> compute -> write -> return. The adapter (LoRA) or model folder (full) is trained in a
staging folder and renamed into the cache when complete; key = distillation-set key + model + training config.
"""
from __future__ import annotations

from pathlib import Path

from s2d import keys
from s2d.cache import keyed, once, plain
from s2d.errors import check_positive
from s2d.launch import check_launch, launch
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

    from s2d.training import example_tokens
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


def train_spec(ctx, examples: list[dict], target: Path) -> dict:
    """Everything a training process needs, as plain JSON (it may run under `accelerate launch`)."""
    return {"model_path": ctx.model_path, "trust_remote_code": bool(ctx.cfg.model.get("trust_remote_code", False)),
            "training": plain(ctx.cfg.training), "seed": int(ctx.cfg.seed), "examples": examples,
            "target": str(target),
            # The training curves' W&B run (a run of the job's group, linked from the job's), or none.
            "wandb": ctx.log.training_run(target.name) if ctx.log is not None else None}


def _link(link: Path, target: Path) -> None:
    """Point the run folder at the cached checkpoint instead of copying hundreds of MB."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)
