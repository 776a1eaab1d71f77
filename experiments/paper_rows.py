"""Print a paper table's rows, measured, from the results.json files of its experiment run(s).

    python experiments/paper_rows.py table1 multirun/<time>/*/results.json
    python experiments/paper_rows.py --copy experiments/table2/results table2 outputs/table2-usc/<time>/results.json

Every number comes from the files given; --copy also stores them beside the README (named by their run folder).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}%"


def tok(m):
    return f"{m['tokens_per_input']:.1f}"


def table1(runs):
    lines = ["| task | row | accuracy | #tokens | n |", "|---|---|---|---|---|"]
    for task in ("last_letter", "coin_flip"):
        by_tech = {r["run"]["technique"]: r for r in runs if r["run"]["task"] == task}
        if not by_tech:
            continue
        any_run = next(iter(by_tech.values()))
        rows = [("System 1", any_run["system1"])]
        if "system1" in by_tech:
            rows.append(("Distill System 1", by_tech["system1"]["distilled"]))
        for tech, label in (("rar_1step", "1-Step RaR"), ("rar_2step", "2-Step RaR")):
            if tech in by_tech:
                rows.append((f"{label} (System 2)", by_tech[tech]["system2"]))
        if "rar_2step" in by_tech:
            r = by_tech["rar_2step"]
            rows.append(("Distill 2-Step RaR", r["distilled"]))
            if "none" in r.get("ablations", {}):
                rows.append(("Distill 2-Step RaR, no filter", r["ablations"]["none"]["distilled"]))
        lines += [f"| {task} | {name} | {pct(m['accuracy'])} | {tok(m)} | {m['n']} |" for name, m in rows]
    lines += ["", "| task | technique | kept (majority) | target accuracy | kept (no filter) | target accuracy |",
              "|---|---|---|---|---|---|"]
    for r in runs:
        c, a = r["curation"], r.get("ablations", {}).get("none", {}).get("curation", {})
        lines.append(f"| {r['run']['task']} | {r['run']['technique']} | {c['kept']}/{c['inputs']} | "
                     f"{pct(c['target_accuracy'])} | {a.get('kept', '–')}/{a.get('inputs', '–')} | "
                     f"{pct(a.get('target_accuracy'))} |")
    return lines


def table2(runs):
    r = runs[0]
    rows = [("System 1 (zero-shot)", r["system1"]), ("System 2 (S2A)", r["system2"]),
            ("Distill S2A (USC)", r["distilled"])]
    if "none" in r.get("ablations", {}):
        rows.append(("Distill S2A (no USC)", r["ablations"]["none"]["distilled"]))
    lines = ["| model | acc (biased) | acc (unbiased) | #tokens | n biased / unbiased |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {pct(m['accuracy_biased'])} | {pct(m['accuracy_unbiased'])} | {tok(m)} | "
              f"{m['n_biased']} / {m['n_unbiased']} |" for name, m in rows]
    lines += ["", "Biased accuracy per opinion template (`incorrect` = Fig. 11, the opinion names a wrong answer):", "",
              "| model | incorrect | not_correct | correct |", "|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{pct(m.get(f'accuracy_biased_{t}'))} (n={m.get(f'n_biased_{t}', 0)})"
                                          for t in ("incorrect", "not_correct", "correct")) + " |" for name, m in rows]
    c = r["curation"]
    lines += ["", f"USC kept {c['kept']}/{c['inputs']} inputs (target accuracy {pct(c['target_accuracy'])}, "
              f"alias match against gold, analysis only) from {c['samples_per_input']} S2A samples each."]
    return lines


def table3(runs):
    lines = ["| model | agreement (proxy label) | % inconsistent | #tokens | pairs |", "|---|---|---|---|---|"]
    for r in runs:
        tech = f"BSM ({r['run']['technique']}, merge={r.get('_merge', '?')})"
        for name, m in (("System 1", r["system1"]), (tech, r["system2"]), ("Distill BSM (label only)", r["distilled"])):
            name += " [nothing kept: = base]" if m.get("note") else ""
            lines.append(f"| {name} | {pct(m['accuracy'])} | {pct(m['inconsistent'])} | {tok(m)} | {m['pairs']} |")
        c = r["curation"]
        lines += ["", f"Perturbation filter kept {c['kept']}/{c['inputs']} training pairs (both orders agreed)"
                  + ("." if c["target_accuracy"] is None else
                     f"; their verdicts match the proxy label {pct(c['target_accuracy'])} of the time.")]
    return lines


def table4(runs):
    ks = sorted({k for r in runs for k in r["system2"].get("majority", {})}, key=lambda k: int(k.split("@")[1]))
    head = "| row | " + " | ".join(f"{k} acc | {k} #tokens" for k in ks) + " |"
    lines = [head, "|---|" + "---|---|" * len(ks)]
    first = runs[0]
    rows = [("System 1, few-shot (no CoT)", first["system1"])]
    rows += [(f"System 2, {r['run']['technique']}", r["system2"]) for r in runs]
    rows += [(f"Distill {r['run']['technique']}", r["distilled"]) for r in runs]
    for name, m in rows:
        maj = m.get("majority", {})
        lines.append(f"| {name} | " + " | ".join(f"{pct(maj[k]['accuracy'])} | {maj[k]['tokens_per_input']:.0f}"
                                               if k in maj else "– | –" for k in ks) + " |")
    lines.append("")
    lines += [f"Greedy: System 1 {pct(first['system1']['accuracy'])}; " + "; ".join(
        f"{r['run']['technique']}: System 2 {pct(r['system2']['accuracy'])} ({tok(r['system2'])} tok), distilled "
        f"{pct(r['distilled']['accuracy'])} ({tok(r['distilled'])} tok); majority kept {r['curation']['kept']}/"
        f"{r['curation']['inputs']}, target accuracy {pct(r['curation']['target_accuracy'])}" for r in runs)]
    return lines


def table7(runs):
    lines = ["| model | prompt | exact match | miss match rate | n |", "|---|---|---|---|---|"]
    prompts = {"": "{question}", "@flip_means_reverse": "{question} Flip means reverse.",
               "@flip_means_reverse_yes_no": "{question} Flip means reverse. Answer the Yes or No question."}
    by_tech = {r["run"]["technique"]: r for r in runs}
    any_run = runs[0]

    def row(r, key):
        return r[key] if "@" not in key else r["variants"][key]
    for suffix, prompt in prompts.items():
        m = row(any_run, "system1" + suffix)
        lines.append(f"| System 1 | `{prompt}` | {pct(m['accuracy'])} | {pct(m['unparsed_rate'])} | {m['n']} |")
    for tech, label in (("rar_1step", "1 Step RaR"), ("rar_2step", "2 Step RaR")):
        if tech in by_tech:
            m = by_tech[tech]["system2"]
            lines.append(f"| {label} | Fig. {3 if tech == 'rar_1step' else 5} | {pct(m['accuracy'])} | "
                         f"{pct(m['unparsed_rate'])} | {m['n']} |")
    for tech, label in (("system1", "Distill system 1"), ("rar_1step", "Distill 1 Step RaR"),
                        ("rar_2step", "Distill system 2 (2 Step RaR)")):
        if tech in by_tech:
            for suffix, prompt in prompts.items():
                m = row(by_tech[tech], "distilled" + suffix)
                lines.append(f"| {label} | `{prompt}` | {pct(m['accuracy'])} | {pct(m['unparsed_rate'])} | {m['n']} |")
    return lines


TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "table7": table7}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", choices=sorted(TABLES))
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--copy", type=Path, help="also copy each results.json here as <run folder>.json")
    args = ap.parse_args()
    runs = []
    for path in args.results:
        run = json.loads(path.read_text())
        cfg = path.parent / ".hydra" / "config.yaml"
        if cfg.exists() and "merge:" in cfg.read_text():
            run["_merge"] = next(line.split(":", 1)[1].strip() for line in cfg.read_text().splitlines()
                                 if line.strip().startswith("merge:"))
        runs.append(run)
        if args.copy:
            args.copy.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, args.copy / f"{path.parent.name}.json")
    print("\n".join(TABLES[args.table](runs)))
    print("\nwall time: " + ", ".join(f"{r['run']['name']} {r['run']['wall_s'] / 60:.1f} min" for r in runs))


if __name__ == "__main__":
    main()
