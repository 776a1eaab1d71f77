"""`s2d-report PATH... [--out DIR]`: one table over run folders (single runs or multirun folders).

    s2d-report outputs/ multirun/2026-11-26_12-00-00 --out report/

Reads every results.json under the given paths and writes DIR/report.md: one row per run with System 1,
System 2 and distilled System 1 accuracy and tokens per input, and the kept fraction of curation.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2d.cache import atomic_write_text


def find_results(paths: list[str]) -> list[tuple[Path, dict]]:
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise SystemExit(f"s2d-report: error: no such path '{p}'")
        files = [p] if p.is_file() else sorted(p.rglob("results.json"))
        found += [(f, json.loads(f.read_text())) for f in files]
    return found


def markdown_table(runs: list[tuple[Path, dict]]) -> str:
    head = ("| run | task | technique | filter | training | S1 acc | S1 tok | S2 acc | S2 tok | distilled acc "
            "| distilled tok | kept |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for path, r in runs:
        run, c = r["run"], r["curation"]
        filt = run["filter"] + (" (gold labels)" if c.get("uses_gold_labels") else "")
        lines.append(f"| {path.parent.name} | {run['task']} | {run['technique']} | {filt} | {run['training']} | "
                     + " | ".join(f"{r[row]['accuracy']:.1%} | {r[row]['tokens_per_input']:.1f}"
                                  for row in ("system1", "system2", "distilled"))
                     + f" | {c['kept']}/{c['inputs']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="s2d-report", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="run folders, multirun folders or results.json files")
    ap.add_argument("--out", default="report", help="output folder (default: ./report)")
    args = ap.parse_args(argv)
    runs = find_results(args.paths)
    if not runs:
        print(f"s2d-report: error: no results.json under {', '.join(args.paths)}", file=sys.stderr)
        raise SystemExit(2)
    table = markdown_table(runs)
    out = Path(args.out)
    atomic_write_text(out / "report.md", f"# s2d report ({len(runs)} runs)\n\n" + table)
    print(table)
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
