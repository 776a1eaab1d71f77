"""Stage order and shared state: generate -> curate -> train -> evaluate -> broad.

Each stage is a function `run(ctx) -> dict` in s2d/stages/, reading the resolved config slice it needs and writing
content-addressed outputs under `paths.cache_dir`; its typed output (s2d/outputs.py) is `ctx.generated`,
`ctx.curated`, `ctx.trained`, `ctx.evaluated`, `ctx.broad` for the later stages. Plugins
(tasks, filters) never see the Context: they get `ctx.service`, a `GenerationService` (s2d/generation.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from s2d import keys, schema
from s2d.backends.base import resolve_dtype
from s2d.cache import plain
from s2d.generation import GenerationService
from s2d.models import resolve_model_path
from s2d.outputs import BroadScores, Curated, Evaluated, Generated, Trained
from s2d.registry import build

STAGES = ("generate", "curate", "train", "evaluate", "broad")
OUTPUT_FIELDS = dict(zip(STAGES, ("generated", "curated", "trained", "evaluated", "broad")))


@dataclass
class Engine:
    """The generation model a Context serves from. Contexts over one base model (the tasks of a multi-task run,
    s2d/loops/) share one, so one vLLM engine serves them all; a continuous round has a base of its own."""
    gen: object = None
    weights: str | None = None


@dataclass
class Context:
    cfg: object
    run_dir: Path
    cache_dir: Path
    model_path: str = ""
    base_identity: str | None = None   # the base model's name in cache keys when not `model.path` (a merged round)
    task: object = None
    technique: object = None   # the System 2 technique, built once
    filter: object = None      # the curation filter, built once
    service: GenerationService | None = None
    pool_payload: dict = field(default_factory=dict)   # keys.pool: what System 2's generations are made from
    train_items: list = field(default_factory=list)
    test_items: list = field(default_factory=list)
    # What each stage hands on (s2d/outputs.py), set as the stages run.
    generated: Generated | None = None
    curated: Curated | None = None
    trained: Trained | None = None
    evaluated: Evaluated | None = None
    broad: BroadScores | None = None
    stages: dict = field(default_factory=dict)
    engine: Engine = field(default_factory=Engine)
    # The job's W&B run, where one is live (s2d/tracking.py JobLog): stage timings as they end, the training
    # process's settings for its curves. None: nothing is logged during the run.
    log: object = None

    @property
    def model_identity(self) -> dict:
        """What makes generations of this model reproducible: where it comes from, its numeric precision and the
        engine that decodes it (vLLM and transformers sample differently from the same seed)."""
        return {"path": self.base_identity or str(self.cfg.model.path), "dtype": resolve_dtype(self.cfg.backend.dtype),
                "engine": str(self.cfg.backend.name)}

    def generator(self, checkpoint: str | None = None):
        """The generation model, loaded on first use (a fully cached rerun never loads it): the base model, or with
        `checkpoint` a trained one (a LoRA adapter or a full fine-tune, by `training.method`). A vLLM engine is
        started once and has the trained weights swapped in; the HF backend loads a model per checkpoint."""
        kind = self.cfg.training.method if checkpoint else "base"
        engine = self.engine
        gen = engine.gen
        if gen is not None and getattr(gen, "swaps_weights", False):
            gen.use_weights(checkpoint, kind)
            return gen
        if gen is not None and engine.weights == checkpoint:
            return gen
        self.release_generator()
        from s2d.backends import make_generator
        engine.gen = make_generator(self.cfg.backend, self.model_path, checkpoint, kind,
                                    bool(self.cfg.model.get("trust_remote_code", False)))
        engine.weights = checkpoint
        return engine.gen

    def release_generator(self, for_training: bool = False) -> None:
        """Drop the generation model, freeing its memory (a vLLM worker process exits). Before training a vLLM
        engine on a CPU stays: there is no GPU memory to free, and a restart costs ~40 s."""
        engine = self.engine
        if for_training and getattr(engine.gen, "keeps_engine_for_training", False):
            return
        if engine.gen is not None and hasattr(engine.gen, "close"):
            engine.gen.close()
        engine.gen = None
        engine.weights = None


def validate(cfg) -> None:
    """Every key, value type and choice against the schema (s2d/schema.py), then each stage's `check(cfg)`: the
    value checks a type cannot make. Each raises a one-line UserError, before any model loads."""
    from s2d.stages import broad, curate, evaluate, generate, train
    schema.check(cfg)
    for stage in (generate, curate, train, evaluate, broad):
        stage.check(cfg)


def prepare(cfg, run_dir: Path, base: tuple[str, str] | None = None, pool: slice | None = None,
            engine: Engine | None = None) -> Context:
    """Build the run's plugins, model path, generation service and splits. The loops (s2d/loops/) pass more:
    `base` = (folder, identity) of a base model other than `model.path` (a continuous round starts from the
    previous round's merged model; `identity` names it in cache keys), `pool` = the slice of the unlabeled pool
    this run uses (a round's fresh inputs; the split is built up to its end), `engine` = a generation model shared
    with other contexts of the same base model."""
    validate(cfg)
    ctx = Context(cfg=cfg, run_dir=Path(run_dir), cache_dir=Path(cfg.paths.cache_dir))
    if engine is not None:
        ctx.engine = engine
    ctx.task = build("task", cfg.task)
    ctx.technique = build("technique", cfg.technique)   # built once; a bad config fails before any model loads
    ctx.filter = build("filter", cfg.filter)
    ctx.filter.check_task(ctx.task)
    if base is None:
        ctx.model_path = resolve_model_path(cfg.model, cfg.paths.models_dir)
    else:
        ctx.model_path, ctx.base_identity = base
    ctx.service = GenerationService(cache_dir=ctx.cache_dir, seed=int(cfg.seed),
                                    batch_size=int(cfg.backend.batch_size), model_identity=ctx.model_identity,
                                    generator=ctx.generator)
    ctx.pool_payload = keys.pool(cfg, ctx.model_identity, ctx.task, ctx.technique)
    data = cfg.data if pool is None else OmegaConf.create({**plain(cfg.data), "train_size": int(pool.stop)})
    ctx.train_items, ctx.test_items = ctx.task.build_splits(ctx.service, data)
    if pool is not None:
        ctx.train_items = ctx.train_items[pool]
    return ctx


def run_stages(ctx: Context, names: tuple[str, ...] = STAGES) -> None:
    """Run the stages in order (all of them, or the first ones: the tasks of a multi-task run skip `broad`)."""
    from s2d.stages import broad, curate, evaluate, generate, train
    modules = dict(zip(STAGES, (generate, curate, train, evaluate, broad)))
    early = {}   # (seconds, cached) of a stage's work before its turn (evaluate: the base rows, before training)
    for name in [n for n in STAGES if n in names]:
        if name == "train" and "evaluate" in names:
            early["evaluate"] = preview_base_rows(ctx)
        start = time.perf_counter()
        print(f"[s2d] stage {name} ...", flush=True)
        out = modules[name].run(ctx)
        setattr(ctx, OUTPUT_FIELDS[name], out)
        before_s, before_cached = early.get(name, (0.0, True))
        ctx.stages[name] = {"cached": bool(out.cached) and before_cached,
                            "wall_s": round(time.perf_counter() - start + before_s, 2), **out.info}
        print(f"[s2d] stage {name} done in {ctx.stages[name]['wall_s']:.1f}s"
              f"{' (cached)' if ctx.stages[name]['cached'] else ''}", flush=True)
        if ctx.log is not None:   # visible in W&B while the run goes on
            ctx.log.stage_done(name, ctx.stages[name])


def preview_base_rows(ctx) -> tuple[float, bool]:
    """System 1's and System 2's rows as soon as they are known, before training (the evaluate stage reads them back
    from the cache), and the expected time of the trainings and distilled rows still to come. Returns (its seconds,
    whether every row came from the cache)."""
    from s2d.stages import evaluate, train
    start = time.perf_counter()
    lines, seconds, cached = evaluate.preview(ctx)
    print("[s2d] base model rows (before training):\n" + "\n".join("  " + line for line in lines), flush=True)
    try:
        steps, train_s = train.expected_seconds(ctx)
    except (OSError, ValueError) as e:   # an estimate only: a model folder without a loadable tokenizer gives none
        steps, train_s = "?", None
        print(f"[s2d] no training estimate ({type(e).__name__}: {str(e).splitlines()[0][:120]})", flush=True)
    distilled = sum(1 for s in (ctx.curated, *ctx.curated.ablations.values()) if s.examples)
    system1_s = seconds.get("system1", 0.0)
    parts = [f"training {steps} step(s)" + ("" if train_s is None else f" ~{_minutes(train_s)}")]
    if distilled:
        # A cached System 1 row says nothing about how long a fresh row takes.
        parts.append(f"{distilled} distilled row(s)" + (f" ~{_minutes(distilled * system1_s)}" if system1_s > 5
                                                        else ""))
    if ctx.cfg.benchmarks.get("tasks"):
        parts.append(f"then the broad block ({len(ctx.cfg.benchmarks.tasks)} benchmarks, base + distilled)")
    print("[s2d] still to come: " + ", ".join(parts), flush=True)
    return time.perf_counter() - start, cached


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
