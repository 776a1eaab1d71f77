"""`s2d-report PATH... [--out DIR]`: compare runs (single runs or multirun folders) on accuracy and token cost.

    s2d-report multirun/2026-11-26_12-00-00 outputs/ --out report/

Reads every results.json (and failed.json) under the given paths and writes to DIR:
- report.md: one row per run: System 1 / System 2 / distilled accuracy and tokens per input, kept fraction,
  broad-benchmark deltas with regressions marked;
- accuracy_vs_tokens.png: every run's three points (System 1, System 2, distilled) and the Pareto front;
- report.html: one page with the same table and the plot embedded;
- for continuous runs (`rounds`, s2d/loops/) rounds.png and a per-round table: accuracy and tokens per round,
  the curation's kept fraction and target accuracy; for multi-task runs (`tasks`) tasks.png and a per-task table:
  System 1, System 2, the per-task distilled model and the joint model on each task.
Where the runs were logged to W&B (or with --wandb online/offline), one summary W&B run in the sweep's group
logs the same table and chart, and wandb_workspace.json holds the group's W&B workspace (s2d/dashboard.py),
which `--wandb online` also saves to W&B.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
from pathlib import Path

from s2d.cache import atomic_write_text
from s2d.loop_rows import round_view, task_view
from s2d.results import difference_text

ROWS = (("system1", "System 1", "o"), ("system2", "System 2", "s"), ("distilled", "distilled", "^"))


def find_runs(paths: list[str]) -> tuple[list[dict], list[dict]]:
    """(completed runs, failed jobs) under `paths`; each run carries its folder as `_dir`."""
    runs, failed = [], []
    for p in map(Path, paths):
        if not p.exists():
            raise SystemExit(f"s2d-report: error: no such path '{p}'")
        for f in ([p] if p.is_file() else sorted(p.rglob("results.json"))):
            runs.append({**json.loads(f.read_text()), "_dir": f.parent})
        if p.is_dir():
            failed += [{**json.loads(f.read_text()), "_dir": f.parent} for f in sorted(p.rglob("failed.json"))]
    return runs, failed


def label(run: dict) -> str:
    """The run's own name (`name` in its config); a folder name where a run has none (older results)."""
    return run.get("run", {}).get("name") or run["_dir"].name


def labels(runs: list[dict]) -> list[str]:
    """One label per run: its name, made unique with the folder where two runs share a name."""
    names = [label(r) for r in runs]
    return [n if names.count(n) == 1 else f"{n} ({r['_dir'].name})" for n, r in zip(names, runs)]


def table_rows(runs: list[dict]) -> list[dict]:
    rows = []
    for r, name in zip(runs, labels(runs)):
        run, c, broad = r["run"], r["curation"], r.get("broad") or {}
        regressed = sorted(name for name, b in broad.items() if b.get("regressed"))
        verdicts = [b.get("verdict") for b in broad.values() if b.get("verdict")]
        rows.append({
            "run": name, "task": run["task"], "technique": run["technique"],
            "filter": run["filter"] + (" (gold labels)" if c.get("uses_gold_labels") else ""),
            "training": run["training"], "seed": run.get("seed"),
            **{f"{key}_acc": r[key]["accuracy"] for key, _, _ in ROWS},
            **{f"{key}_tok": r[key]["tokens_per_input"] for key, _, _ in ROWS},
            "distilled_vs_s1": difference_text((r.get("comparisons") or {}).get("distilled - system1")) or None,
            "kept": c.get("kept_fraction"),
            "vote_margin": c.get("vote_margin"),
            "target_accuracy": c.get("target_accuracy"), "target_accuracy_ci95": c.get("target_accuracy_ci95"),
            # the same generations curated otherwise (none, gold), each trained and scored
            "ablations": {name: a["distilled"]["accuracy"] for name, a in (r.get("ablations") or {}).items()},
            "broad_mean_delta": (sum(b["delta"] for b in broad.values()) / len(broad)) if broad else None,
            "regressed": regressed,
            "held": verdicts.count("held"), "inconclusive": verdicts.count("inconclusive"),
        })
    return rows


def _pct(x):
    return "–" if x is None else f"{x:.1%}"


def _ablations(row: dict) -> str:
    return ", ".join(f"{name} {_pct(acc)}" for name, acc in row["ablations"].items()) or "–"


HEAD = ["run", "task", "technique", "filter", "training", "seed", "S1 acc", "S1 tok/input", "S2 acc",
        "S2 tok/input", "distilled acc", "distilled tok/input", "distilled − S1: points [95%], exact p", "kept",
        "vote margin",
        "kept targets right [95%] (gold, analysis only)", "distilled, other filters", "broad Δ (mean)",
        "broad verdicts"]


def cells(r: dict) -> list[str]:
    """One table row as text, in HEAD's order (the markdown and the HTML table share it)."""
    return [r["run"], r["task"], r["technique"], r["filter"], r["training"], str(r["seed"]),
            _pct(r["system1_acc"]), f"{r['system1_tok']:.1f}", _pct(r["system2_acc"]), f"{r['system2_tok']:.1f}",
            _pct(r["distilled_acc"]), f"{r['distilled_tok']:.1f}", r["distilled_vs_s1"] or "–",
            _pct(r["kept"]), "–" if r["vote_margin"] is None else f"{r['vote_margin']:.2f}",
            _target_precision(r), _ablations(r),
            "–" if r["broad_mean_delta"] is None else f"{r['broad_mean_delta']:+.1%}",
            broad_verdicts(r)]


def _target_precision(r: dict) -> str:
    ci = r["target_accuracy_ci95"]
    return _pct(r["target_accuracy"]) + (f" [{ci[0]:.0%}, {ci[1]:.0%}]" if ci else "")


def broad_verdicts(r: dict) -> str:
    """`regressed: mmlu` or `none regressed`, with how many held and how many were inconclusive."""
    counts = f" (held {r['held']}, inconclusive {r['inconclusive']})" if r["held"] + r["inconclusive"] else ""
    return ("regressed: " + ", ".join(r["regressed"]) if r["regressed"] else "none regressed") + counts


def markdown(rows: list[dict], failed: list[dict]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        lines.append("| " + " | ".join(cells(r)) + " |")
    if failed:
        lines += ["", "Failed jobs:", ""] + [f"- `{f['_dir'].name}`: {f['error']}" for f in failed]
    return "\n".join(lines) + "\n"


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both fewer tokens and higher accuracy, by increasing tokens."""
    front, best = [], float("-inf")
    for tok, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((tok, acc))
            best = acc
    return front


def plain_log_ticks(axis, values: list[float]) -> None:
    """A log x axis labelled 10, 20, 50 (1-2-5 steps, finer where the range is short) from a labelled tick below
    the smallest value to one above the largest, instead of matplotlib's `2 x 10^1`, which leaves a point's decade
    unlabelled."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    lo, hi = min(values), max(values)
    steps = (1, 2, 5) if hi / lo > 8 else (1, 1.5, 2, 3, 5, 7)
    every = [m * 10 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
             for m in steps]
    below = max(t for t in every if t <= lo * 0.95)   # the axis runs from a labelled tick to a labelled tick
    above = min(t for t in every if t >= hi * 1.05)
    axis.set_major_locator(FixedLocator([t for t in every if below <= t <= above]))
    axis.axes.set_xlim(below, above)
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    points = []
    for i, (r, run_label) in enumerate(zip(runs, labels(runs))):
        color = colors[i % len(colors)]
        for key, _, marker in ROWS:
            tok, acc = max(r[key]["tokens_per_input"], 1e-3), r[key]["accuracy"]
            points.append((tok, acc))
            ci = r[key].get("ci95")   # the row's 95% interval (Wilson), where results.json has one
            if ci:
                ax.errorbar(tok, acc, yerr=[[acc - ci[0]], [ci[1] - acc]], color=color, alpha=0.6,
                            capsize=3, linewidth=1, zorder=1)
            ax.scatter(tok, acc, marker=marker, color=color, s=60, edgecolor="black", linewidth=0.5, zorder=2,
                       label=run_label if key == "system1" else None)
        ax.plot([r[k]["tokens_per_input"] for k, _, _ in ROWS], [r[k]["accuracy"] for k, _, _ in ROWS],
                color=color, alpha=0.3, linewidth=1)
    front = pareto_front(points)
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", linestyle="--",
            linewidth=1.2, label="Pareto front")
    for _, name, marker in ROWS:
        ax.scatter([], [], marker=marker, color="grey", label=name)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis, [p[0] for p in points])
    ax.set_xlabel("generated tokens per input (log)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("accuracy vs token cost\nSystem 1 (o), System 2 (s), distilled System 1 (^)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")   # the legend sits outside the axes: keep it (and the title) in the image
    plt.close(fig)


ROUND_HEAD = ["run", "round", "S1 acc", "S2 acc", "S2 tok/input", "distilled acc [95%]", "distilled tok/input",
              "distilled − round-1 S1 [95%], p", "kept", "target acc", "cached"]
TASK_HEAD = ["run", "task", "technique", "filter", "weight", "S1 acc", "S2 acc", "distilled acc (own model)",
             "joint acc", "joint − own [95%], p"]


def round_rows(runs: list[dict]) -> list[list[str]]:
    """One row per round of every continuous run (ROUND_HEAD), from s2d.loop_rows' view of it."""
    rows = []
    for run, name in zip(runs, labels(runs)):
        for v in map(round_view, run.get("rounds") or []):
            rows.append([name, str(v["round"]), _pct(v["system1_accuracy"]), _pct(v["system2_accuracy"]),
                         f"{v['system2_tokens']:.1f}", _pct_ci(v["distilled_accuracy"], v["distilled_ci95"]),
                         f"{v['distilled_tokens']:.1f}", difference_text(v["distilled_vs_round1"]) or "n/a",
                         _pct(v["kept_fraction"]), _pct(v["target_accuracy"]), "yes" if v["cached"] else "no"])
    return rows


def task_rows(runs: list[dict]) -> list[list[str]]:
    """One row per task of every multi-task run (TASK_HEAD), from s2d.loop_rows' view of it."""
    rows = []
    for run, name in zip(runs, labels(runs)):
        for v in (task_view(task, t) for task, t in (run.get("tasks") or {}).items()):
            diff = v["joint_minus_distilled"]
            rows.append([name, v["task"], v["technique"], v["filter"], f"{v['weight']:g}",
                         _pct(v["system1_accuracy"]), _pct(v["system2_accuracy"]), _pct(v["distilled_accuracy"]),
                         _pct(v["joint_accuracy"]), difference_text(diff) or f"{diff['delta']:+.1%}"])
    return rows


def _pct_ci(accuracy: float, ci) -> str:
    return _pct(accuracy) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def md_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def plot_rounds(runs: list[dict], path: Path) -> None:
    """Per continuous run: System 2 and distilled accuracy per round (System 1 of the base dashed), tokens per
    input per round, and the curation's kept fraction and target accuracy per round."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, tok, cur) = plt.subplots(1, 3, figsize=(13, 4), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, name) in enumerate(zip(runs, labels(runs))):
        rounds = [round_view(r) for r in run.get("rounds") or []]
        if not rounds:
            continue
        color, x = colors[i % len(colors)], [r["round"] for r in rounds]
        acc.plot(x, [r["system2_accuracy"] for r in rounds], marker="s", color=color, alpha=0.5)
        acc.plot(x, [r["distilled_accuracy"] for r in rounds], marker="^", color=color, label=name)
        acc.axhline(rounds[0]["system1_accuracy"], color=color, linestyle=":", linewidth=1)
        tok.plot(x, [r["system2_tokens"] for r in rounds], marker="s", color=color, alpha=0.5)
        tok.plot(x, [r["distilled_tokens"] for r in rounds], marker="^", color=color, label=name)
        cur.plot(x, [r["kept_fraction"] for r in rounds], marker="o", color=color, label=f"{name} kept")
        cur.plot(x, [r["target_accuracy"] or 0.0 for r in rounds], marker="x", color=color,
                 linestyle="--", label=f"{name} target acc")
    for ax, title in ((acc, "accuracy: distilled (^), System 2 (s), base System 1 (:)"),
                      (tok, "tokens per input"), (cur, "curation: kept fraction (o), target accuracy (x)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc.set_ylim(-0.03, 1.03)
    cur.set_ylim(-0.03, 1.03)
    acc.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


TASK_BARS = (("system1", "System 1"), ("system2", "System 2"), ("distilled", "distilled (own model)"),
             ("joint", "joint model"))


def plot_tasks(runs: list[dict], path: Path) -> None:
    """Per task of every multi-task run: System 1, System 2, its own distilled model and the joint model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(f"{name}\n{task}", t) for run, name in zip(runs, labels(runs))
              for task, t in (run.get("tasks") or {}).items()]
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(groups)), 4), dpi=110)
    width = 0.8 / len(TASK_BARS)
    for j, (key, title) in enumerate(TASK_BARS):
        ax.bar([i + (j - 1.5) * width for i in range(len(groups))], [t[key]["accuracy"] for _, t in groups],
               width=width, label=title)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=7)
    ax.set_ylim(0, 1.03)
    ax.set_ylabel("accuracy")
    ax.set_title("per task: the joint model against each task's own distilled model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def loop_sections(runs: list[dict], out: Path) -> tuple[str, str]:
    """The per-round and per-task panels (markdown, HTML), drawing rounds.png / tasks.png where runs have them."""
    md, page = "", ""
    for key, head, rows, draw, title in (
            ("rounds", ROUND_HEAD, round_rows(runs), plot_rounds, "Per round (continuous loop)"),
            ("tasks", TASK_HEAD, task_rows(runs), plot_tasks, "Per task (multi-task distillation)")):
        if not rows:
            continue
        png = out / f"{key}.png"
        draw(runs, png)
        md += f"\n## {title}\n\n" + md_table(head, rows)
        cells_html = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        image = base64.b64encode(png.read_bytes()).decode()
        page += (f"<h2>{title}</h2><table id='{key}'><thead><tr>"
                 + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr></thead><tbody>{cells_html}"
                 f"</tbody></table><img id='{key}-plot' alt='{title}' src='data:image/png;base64,{image}'>")
    return md, page


def html_page(rows: list[dict], failed: list[dict], png: Path, extra: str = "") -> str:
    body = []
    for r in rows:
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)[:-1])
        reg = (f"<td class='regressed'>&#9888; {html.escape(broad_verdicts(r))}</td>" if r["regressed"]
               else f"<td>{html.escape(broad_verdicts(r))}</td>")
        body.append(f"<tr class='run'>{tds}{reg}</tr>")
    failed_html = "".join(f"<li><code>{html.escape(f['_dir'].name)}</code>: {html.escape(f['error'])}</li>"
                          for f in failed)
    image = base64.b64encode(png.read_bytes()).decode()
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>s2d report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:nth-child(-n+5) {{ text-align: left; }}
.regressed {{ color: #b00020; font-weight: bold; }}
</style></head><body>
<h1>s2d report: {len(rows)} runs</h1>
<p>Accuracy and mean generated tokens per input on each run's test split. System 2 tokens are summed over every
call of the technique. "kept" is the share of unlabeled inputs that passed curation. Broad Δ is the mean of
distilled − base over the held-out benchmarks. Each benchmark's verdict comes from an exact paired test on the
same items, Holm-corrected over the block: regressed (worse at adjusted p &lt; 0.05), held (the 95% interval's
lower end above −held_margin), inconclusive (too few items to tell). "distilled − S1" is the paired difference on
the test items with its 95% interval and the exact McNemar p. "vote margin" is the mean share of System 2's most
common answer minus the runner-up's over the pool (1 = unanimous): low margins are where a filter drops inputs.</p>
<table id="runs"><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in HEAD)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
{"<h2>Failed jobs</h2><ul id='failed'>" + failed_html + "</ul>" if failed else ""}
<h2>Accuracy vs tokens</h2>
<img id="pareto" alt="accuracy vs tokens per input with the Pareto front" src="data:image/png;base64,{image}">
{extra}
</body></html>
"""


def _cell(value):
    """A W&B table cell: lists and dicts as text."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return value


def write_workspace(runs: list[dict], entity: str | None, project: str, group: str, out: Path, online: bool) -> None:
    """The group's W&B workspace (s2d/dashboard.py): its specification as `wandb_workspace.json` in the report
    folder, and, online, saved to W&B (its URL printed; a failure is one warning line)."""
    from s2d.cache import atomic_write_json
    from s2d.dashboard import save, workspace
    benchmarks = sorted({b for r in runs for b in (r.get("broad") or {})})
    spec = workspace(entity, project, group, benchmarks)
    atomic_write_json(out / "wandb_workspace.json", spec._to_model().model_dump(by_alias=True, exclude_none=True))
    if online:
        try:
            print(f"[s2d-report] W&B workspace: {save(entity, project, group, benchmarks)}", flush=True)
        except Exception as e:
            print(f"[s2d-report] WARNING: the W&B workspace was not saved ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:160] if str(e) else ''}); its specification is in "
                  f"{out / 'wandb_workspace.json'}", flush=True)


def log_to_wandb(runs: list[dict], rows: list[dict], png: Path, mode: str) -> None:
    import wandb

    from s2d.tracking import wandb_mode
    logged = [r["run"].get("wandb") for r in runs if r["run"].get("wandb")]
    if mode == "auto" and not logged:
        return
    mode = wandb_mode("auto" if mode == "auto" else mode)
    if mode == "disabled":
        return
    group = logged[0]["group"] if logged else "s2d-report"
    project = logged[0]["project"] if logged else "s2d"
    entity = logged[0].get("entity") if logged else None
    write_workspace(runs, entity, project, group, png.parent, online=mode == "online")
    run = wandb.init(project=project, entity=entity, group=group, job_type="report", name=f"report-{group}",
                     mode=mode, dir=str(png.parent), settings=wandb.Settings(silent=True))
    try:
        cols = list(rows[0].keys())
        table = wandb.Table(columns=cols, data=[[_cell(v) for v in r.values()] for r in rows])
        points = wandb.Table(columns=["run", "row", "tokens_per_input", "accuracy"],
                             data=[[run_label, name, r[k]["tokens_per_input"], r[k]["accuracy"]]
                                   for r, run_label in zip(runs, labels(runs)) for k, name, _ in ROWS])
        panels = {f"{key}_panel": wandb.Image(str(png.parent / f"{key}.png")) for key in ("rounds", "tasks")
                  if any(r.get(key) for r in runs)}
        run.log({"runs": table, "accuracy_vs_tokens": wandb.Image(str(png)), **panels,
                 "accuracy_vs_tokens_scatter": wandb.plot.scatter(points, "tokens_per_input", "accuracy",
                                                                  title="accuracy vs tokens per input")})
    finally:
        run.finish()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="s2d-report", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="run folders, multirun folders or results.json files")
    ap.add_argument("--out", default="report", help="output folder (default: ./report)")
    ap.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "disabled"],
                    help="summary W&B run: auto = only when the runs were logged to W&B")
    args = ap.parse_args(argv)
    runs, failed = find_runs(args.paths)
    if not runs:
        print(f"s2d-report: error: no results.json under {', '.join(args.paths)}", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    rows = table_rows(runs)
    png = out / "accuracy_vs_tokens.png"
    plot(runs, png)
    loop_md, loop_html = loop_sections(runs, out)
    md = markdown(rows, failed) + loop_md
    atomic_write_text(out / "report.md", f"# s2d report ({len(rows)} runs)\n\n" + md)
    atomic_write_text(out / "report.html", html_page(rows, failed, png, loop_html))
    log_to_wandb(runs, rows, png, args.wandb)
    print(md)
    print(f"wrote {out / 'report.html'}, {out / 'report.md'}, {png}")


if __name__ == "__main__":
    main()
