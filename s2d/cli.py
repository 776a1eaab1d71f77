"""The `s2d` command (also `python -m s2d`): compose the config, run the pipeline, write results.json.

    s2d                                                   # the default run (embedded model, last letter, 2-step RaR)
    s2d technique=cot task=coin_flip training=full        # any config value can be overridden
    s2d -m technique=cot,rar_1step,rar_2step training=lora,full    # a multirun sweep
    s2d experiment=continuous rounds=3                    # the continuous loop (s2d/loops/)
    s2d experiment=multitask                              # several tasks, one joint model (s2d/loops/)
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import hydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from s2d.config_tree import (
    CONF_DIR,
    check_config_keys,
    check_group_overrides,
)
from s2d.errors import UserError


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg) -> float | None:
    """One run; returns `optimized_metric` (a path into results.json) for a Hydra sweeper such as Optuna."""
    from hydra.core.hydra_config import HydraConfig

    from s2d import loops
    from s2d.cache import atomic_write_json
    from s2d.pipeline import prepare, run_stages
    from s2d.results import build_results, format_table, git_sha
    from s2d.tracking import Tracker

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    started, t0 = dt.datetime.now(), time.perf_counter()
    git_sha()   # read now: the code that runs is the code at the start
    print("[s2d] resolved config:\n" + OmegaConf.to_yaml(cfg, resolve=True), flush=True)
    tracker, ctx, exit_code, metric = None, None, 1, None
    try:
        check_optimized_metric(cfg)
        if loops.wanted(cfg):   # rounds > 1 or a tasks list: several Contexts through the same stages
            loops.check(cfg)
            tracker = Tracker(cfg, run_dir, job_identity(hydra_cfg, multirun))
            out = loops.run(cfg, run_dir, list(hydra_cfg.overrides.task), started, t0, tracker)
        else:
            ctx = prepare(cfg, run_dir)
            tracker = Tracker(cfg, run_dir, job_identity(hydra_cfg, multirun))
            ctx.log = tracker.job_log()
            run_stages(ctx)
            out = loops.LoopRun(build_results(ctx, started, time.perf_counter() - t0), ctx.evaluated.samples,
                                ctx.curated.examples, str(run_dir / "distill_set.jsonl"), ctx.trained.path,
                                ctx.generated.path)
        results = out.results
        if tracker.run is not None:
            results["run"]["wandb"] = tracker.info
        atomic_write_json(run_dir / "results.json", results)
        # A requeued Slurm job reruns in its own folder: its success supersedes the attempt that was stopped.
        (run_dir / "failed.json").unlink(missing_ok=True)
        tracker.log_results(results, out.samples, out.examples, out.distill_path,
                            out.checkpoint if cfg.logger.get("log_adapter") else None, out.generations)
        print("\n" + format_table(results), flush=True)
        print(f"[s2d] results: {run_dir / 'results.json'}", flush=True)
        metric = optimized_metric(cfg, results)
        exit_code = 0
    except UserError as e:
        print(f"s2d: error: {e}", file=sys.stderr, flush=True)
        exit_code = 2
        record_failure(run_dir, e)
        if multirun:
            raise   # Hydra records the failed job; its siblings still run
    except BaseException as e:
        record_failure(run_dir, e)
        raise
    finally:
        if ctx is not None:   # a vLLM engine lives in a worker process: stop it, also when the run failed
            ctx.release_generator()
        if tracker is not None:
            tracker.finish(exit_code)
    if exit_code:
        sys.exit(exit_code)
    return metric


# The blocks of results.json an `optimized_metric` path can start with (s2d/results.py, s2d/loops/).
RESULT_BLOCKS = ("ablations", "broad", "curation", "distilled", "joint", "rounds", "run", "system1", "system2",
                 "tasks", "variants")


def check_optimized_metric(cfg) -> None:
    """A sweeper's metric that names no block of results.json fails before any model loads, not after the run."""
    path = cfg.get("optimized_metric")
    if path and str(path).split(".")[0] not in RESULT_BLOCKS:
        raise UserError(f"optimized_metric '{path}' is not in results.json; it starts with one of "
                        f"{', '.join(RESULT_BLOCKS)} (e.g. distilled.accuracy, distilled.tokens_per_input)")


def optimized_metric(cfg, results: dict) -> float | None:
    """`optimized_metric: distilled.accuracy` -> results["distilled"]["accuracy"] (None when not set)."""
    path = cfg.get("optimized_metric")
    if not path:
        return None
    value = results
    for part in str(path).split("."):
        if not isinstance(value, dict) or part not in value:
            raise UserError(f"optimized_metric '{path}' is not in results.json (e.g. distilled.accuracy, "
                            "system1.accuracy, distilled.tokens_per_input)")
        value = value[part]
    print(f"[s2d] {path} = {value}", flush=True)
    return float(value)


def job_identity(hydra_cfg, multirun: bool) -> dict:
    """Group = the sweep (its folder name) in a multirun; the W&B run id derives from the group and the job's
    overrides, so rerunning the same job continues the same W&B run."""
    overrides = sorted(hydra_cfg.overrides.task)
    group = Path(hydra_cfg.sweep.dir).name if multirun else None
    return {"group": group, "overrides": overrides}


def record_failure(run_dir: Path, error: BaseException) -> None:
    """A failed job leaves failed.json beside where results.json would be (reports list it as failed)."""
    import traceback

    from s2d.cache import atomic_write_json
    atomic_write_json(run_dir / "failed.json", {
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-8000:]})


def main() -> None:
    try:
        check_group_overrides(sys.argv[1:])
        check_config_keys(sys.argv[1:])
        from s2d.loops import check_entries
        check_entries(sys.argv[1:])   # a `tasks` list: each entry's config through the same checks
    except UserError as e:
        print(f"s2d: error: {e}", file=sys.stderr)
        sys.exit(2)
    app()


if __name__ == "__main__":
    main()
