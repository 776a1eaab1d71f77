"""The `s2d` command (also `python -m s2d`): compose the config, run the pipeline, write results.json.

    s2d                                                   # the default run (embedded model, last letter, 2-step RaR)
    s2d technique=cot task=coin_flip training=full        # any config value can be overridden
    s2d -m technique=cot,rar_1step,rar_2step training=lora,full    # a multirun sweep
    s2d experiment=continuous rounds=3                    # the continuous loop (s2d/loops.py)
    s2d experiment=multitask                              # several tasks, one joint model (s2d/loops.py)
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from s2d.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def default_cache_dir() -> str:
    if os.environ.get("S2D_CACHE_DIR"):
        return os.environ["S2D_CACHE_DIR"]
    from platformdirs import user_cache_dir
    return user_cache_dir("s2d")


if not OmegaConf.has_resolver("s2d_cache"):
    OmegaConf.register_new_resolver("s2d_cache", default_cache_dir)


def config_groups() -> dict[str, list[str]]:
    """Every config group (nested ones as `task/prompts`) with its options."""
    groups: dict[str, list[str]] = {}
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        if path.parent != CONF_DIR:
            groups.setdefault(path.parent.relative_to(CONF_DIR).as_posix(), []).append(path.stem)
    return groups


def parse_overrides(argv: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-") and "=" in a and not a.startswith("hydra")]
    try:
        return OverridesParser.create().parse_overrides(args)
    except Exception as e:   # Hydra's grammar errors: keep the first line
        raise UserError(f"cannot parse overrides {args}: {str(e).splitlines()[0]}") from None


def check_group_overrides(argv: list[str]) -> None:
    """One clear line for an unknown group option (Hydra's own message is several lines and a stack hint)."""
    groups = config_groups()
    for o in parse_overrides(argv):
        group = o.key_or_group
        if group not in groups or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        for v in values:
            if v not in groups[group] and not (group in OVERLAYS and v == "null"):
                raise UserError(f"unknown {group} '{v}'; valid choices: {', '.join(groups[group])}")


# Groups whose files override other groups' values (`# @package _global_`): their keys are checked.
OVERLAYS = ("experiment", "hparams_search", "debug")
# Maps whose keys are the user's to choose (benchmark names, template fields), not part of the schema.
OPEN_MAPS = ("benchmarks.limit_overrides", "task.fields", "task.templates", "task.prompts")


def leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted paths of every mapping key under `node` (lists are values: their items are not keys)."""
    from omegaconf import DictConfig

    out = []
    for key in node.keys() if isinstance(node, DictConfig) else []:
        path = f"{prefix}{key}"
        out.append(path)
        if path not in OPEN_MAPS:
            out += leaf_keys(node._get_node(key), path + ".")
    return out


def _first_values(argv: list[str]) -> list[str]:
    """The group overrides with the first value of each sweep: one config to check the whole sweep's keys on."""
    groups = config_groups()
    picked = []
    for o in parse_overrides(argv):
        if o.key_or_group in groups and not o.is_delete():
            first = next(iter(o.sweep_string_iterator())) if o.is_sweep_override() else o.get_value_element_as_str()
            picked.append(f"{o.key_or_group}={first}")
    return picked


def check_config_keys(argv: list[str]) -> None:
    """The config tree is the schema: a key that no config file defines is a one-line error, whether it comes from
    the command line (Hydra's own message spans five lines) or from an experiment file (Hydra would silently add
    it beside the real one). Runs before any model loads."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    groups = config_groups()
    group_args = _first_values(argv)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        final = compose(config_name="config", overrides=group_args, return_hydra_config=True)
        base = compose(config_name="config", overrides=_base_choices(final, groups))
        # An overlay's keys are checked against the groups it picks itself too: `experiment=demo benchmarks=none`
        # switches the benchmarks the demo file sizes (`benchmarks.limit`), which is no typo.
        own = compose(config_name="config", overrides=[a for a in group_args if a.split("=")[0] in OVERLAYS],
                      return_hydra_config=True)
        own_base = compose(config_name="config", overrides=_base_choices(own, groups))
    for o in parse_overrides(argv):   # `key=value` on the command line (`+key`: checked by s2d/schema.py)
        key = o.key_or_group
        if key in groups or o.is_add() or o.is_force_add() or o.is_delete():
            continue
        # `final` holds what the overlays set too: `experiment=multitask tasks.1.weight=2` names a list item
        # that only the experiment file has.
        if OmegaConf.select(final, key, default=_MISSING) is _MISSING and not key.startswith(OPEN_MAPS):
            raise UserError(f"unknown config key '{key}' on the command line; {_valid_under(base, key, final)}")
    overlays = {g: final.hydra.runtime.choices.get(g) for g in OVERLAYS if final.hydra.runtime.choices.get(g)}
    if overlays:
        known = set(leaf_keys(base)) | set(leaf_keys(own_base))
        for key in leaf_keys(final):
            if key not in known and not key.startswith(OPEN_MAPS + ("hydra",)):
                files = " or ".join(f"conf/{g}/{c}.yaml" for g, c in overlays.items())
                raise UserError(f"unknown config key '{key}' in {files}; {_valid_under(base, key)}")


_MISSING = object()


def _base_choices(composed, groups) -> list[str]:
    """The group choices of a composed config as overrides, without the overlay groups."""
    return [f"{g}={c}" for g, c in composed.hydra.runtime.choices.items()
            if g in groups and g not in OVERLAYS and c is not None]


def _valid_under(base, key: str, overlaid=None) -> str:
    """The valid keys beside `key`: in the groups' own config, else (a list item of `tasks`) where the overlays
    put them."""
    from omegaconf import OmegaConf

    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(base, parent) if parent else base
    if parent and node is None and overlaid is not None:
        node = OmegaConf.select(overlaid, parent)
    keys = sorted(str(k) for k in node.keys()) if hasattr(node, "keys") else []
    return f"valid keys under '{parent or '<root>'}': {', '.join(keys)}"


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


# The blocks of results.json an `optimized_metric` path can start with (s2d/results.py, s2d/loops.py).
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
