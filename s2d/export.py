"""A run's artefacts in the forms other tools load as they are: the distillation set as TRL prompt-completion JSON
lines with a dataset card, the trained adapter with a model card.

    s2d-export outputs/demo/0_demo-addition_sycophancy-s2a-majority-seed0 --to export/demo
    s2d-export RUN --to DIR --push-to-hub USER/NAME     # also uploads both (needs a Hugging Face token)

`distill_set.jsonl` (written by the curate stage into every run folder, one line per kept input): TRL's
conversational prompt-completion format, exactly what s2d's own training feeds `trl.SFTTrainer`
(`{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}`), plus the analysis fields
`id`, `answer`, `votes` (System 2's extracted answer per sample) and `target_correct` (gold labels: analysis
only, the filter never saw them). `datasets.load_dataset("json", data_files=...)` reads it and `SFTTrainer` trains
on it unconverted. The export folder holds `dataset/` (the JSON lines + README.md, a Hugging Face dataset card)
and, where the run trained a model, `adapter/` (the checkpoint's files + README.md, a model card).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from s2d.cache import atomic_write_text

DISTILL_FILE = "distill_set.jsonl"
ANALYSIS_FIELDS = ("id", "task", "answer", "votes", "target_correct")   # task: a multi-task mix's rows


def trl_row(example: dict) -> dict:
    """One curated example as a TRL conversational prompt-completion row (+ the analysis fields)."""
    return {"prompt": [{"role": "user", "content": example["prompt"]}],
            "completion": [{"role": "assistant", "content": example["target"]}],
            **{k: _text_votes(example[k]) if k == "votes" else example[k] for k in ANALYSIS_FIELDS if k in example}}


def _text_votes(votes: list) -> list:
    # One type per column for Arrow: answers are strings, an unparsed sample is null.
    return [None if v is None else str(v) for v in votes]


def write_distill_set(path: str | Path, examples: list[dict]) -> None:
    """The distillation set as JSON lines of `trl_row`, written atomically."""
    atomic_write_text(path, "".join(json.dumps(trl_row(e), ensure_ascii=False) + "\n" for e in examples))


def read_distill_set(path: str | Path) -> list[dict]:
    """`distill_set.jsonl` back as s2d's examples (prompt, target and the analysis fields)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [{"prompt": r["prompt"][0]["content"], "target": r["completion"][0]["content"],
             **{k: r[k] for k in ANALYSIS_FIELDS if k in r}} for r in rows]


def dataset_card(results: dict) -> str:
    """A Hugging Face dataset card: what the set was made from and by which label-free rule."""
    run, c = results["run"], results["curation"]
    rule = ("GOLD LABELS: an ablation, not System 2 distillation" if c.get("uses_gold_labels")
            else "label-free: no gold answer was read to choose what to keep")
    ta = c.get("target_accuracy")
    return "\n".join([
        "---", "task_categories: [text-generation]", "tags: [s2d, system-2-distillation, trl]",
        f"pretty_name: s2d distillation set ({run['task']}, {run['technique']}, filter {run['filter']})", "---", "",
        f"# System 2 distillation set: {run['task']}", "",
        f"Made by s2d (System 2 distillation, Yu et al. 2024) from `{run['model']}` answering with the System 2 "
        f"technique `{run['technique']}`; the reasoning was dropped and only the final answers kept.", "",
        "| | |", "|---|---|",
        f"| model | `{run['model']}` |", f"| technique | `{run['technique']}` |", f"| task | `{run['task']}` |",
        f"| filter | `{c['filter']}` ({rule}) |",
        f"| samples per input | {c['samples_per_input']} |",
        f"| yield | {c['kept']} of {c['inputs']} unlabeled inputs kept ({c['kept_fraction']:.1%}) |",
        f"| target precision (gold labels, analysis only) | {'n/a' if ta is None else f'{ta:.1%}'} |",
        f"| seed / data seed | {run['seed']} / {run.get('data_seed')} |",
        f"| s2d code | `{run.get('git_sha')}` |", "",
        "## Format", "",
        "TRL conversational prompt-completion rows (`prompt`: the System 1 prompt as a user turn; `completion`: the "
        "distillation target as an assistant turn); `votes` holds System 2's extracted answer per sample, "
        "`target_correct` whether the kept answer is right (gold labels: analysis only).", "",
        "```python", "from datasets import load_dataset",
        f"data = load_dataset('json', data_files='{DISTILL_FILE}', split='train')",
        "# trl.SFTTrainer(model=..., train_dataset=data) trains on it as it is", "```", ""])


def model_card(results: dict, base_model: str | None) -> str:
    """A model card for the distilled adapter: base model, training set, and the run's measured rows."""
    run = results["run"]
    rows = [(name, results[key]) for name, key in (("System 1 (base)", "system1"),
                                                    (f"System 2 ({run['technique']})", "system2"),
                                                    ("distilled System 1 (this adapter)", "distilled"))
            if results.get(key)]
    vs = (results.get("comparisons") or {}).get("distilled - system1")
    lines = ["---", "library_name: peft", "tags: [s2d, system-2-distillation, lora, trl]",
             *([f"base_model: {base_model}"] if base_model else []), "---", "",
             f"# Distilled System 1 adapter: {run['task']} ({run['technique']} -> direct answers)", "",
             f"A {run['training']} adapter on `{run['model']}`, fine-tuned by s2d on the System 2 distillation set "
             f"in `dataset/` ({results['curation']['kept']} examples, filter `{run['filter']}`): it answers directly, "
             f"without the `{run['technique']}` reasoning.", "",
             f"## Measured by the run (test split, n = {results['distilled'].get('n')})", "",
             "| row | accuracy | 95% interval | tokens per input |", "|---|---|---|---|",
             *(f"| {name} | {m['accuracy']:.1%} | {_interval(m.get('ci95'))} | {m['tokens_per_input']:.1f} |"
               for name, m in rows), ""]
    if vs and vs.get("delta") is not None:
        lines += [f"Distilled - System 1: {100 * vs['delta']:+.1f} points "
                  f"[{100 * vs['ci95'][0]:+.1f}, {100 * vs['ci95'][1]:+.1f}], exact McNemar p = {vs['p']:.3g}.", ""]
    lines += ["```python", "from peft import AutoPeftModelForCausalLM",
              "model = AutoPeftModelForCausalLM.from_pretrained('adapter')", "```", ""]
    return "\n".join(lines)


def _interval(ci) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def export(run_dir: Path, out: Path) -> dict[str, Path]:
    """Write `out/dataset` (and `out/adapter` where the run trained one); return what was written."""
    results_path = run_dir / "results.json"
    distill = run_dir / DISTILL_FILE
    for needed in (results_path, distill):
        if not needed.exists():
            raise SystemExit(f"s2d-export: {needed} is missing; RUN must be a finished run's folder "
                             "(one holding results.json and distill_set.jsonl, e.g. outputs/demo/0_demo-...)")
    results = json.loads(results_path.read_text())
    if results.get("tasks") or results.get("rounds"):
        raise SystemExit(f"s2d-export: {run_dir} is a multi-task or continuous run; export one of its task or "
                         "round folders (tasks/<name>, round<k>) or the joint set by hand")
    written = {"dataset": out / "dataset"}
    written["dataset"].mkdir(parents=True, exist_ok=True)
    shutil.copyfile(distill, written["dataset"] / DISTILL_FILE)
    atomic_write_text(written["dataset"] / "README.md", dataset_card(results))
    checkpoint = run_dir / "checkpoint"
    if checkpoint.exists():
        adapter = out / "adapter"
        if adapter.exists():
            shutil.rmtree(adapter)
        shutil.copytree(checkpoint.resolve(), adapter, ignore=shutil.ignore_patterns("checkpoint-*", "s2d_train.json"))
        base = None
        if (adapter / "adapter_config.json").exists():
            base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
        atomic_write_text(adapter / "README.md", model_card(results, base))
        written["adapter"] = adapter
    return written


def push(written: dict[str, Path], repo: str) -> None:
    """Upload the dataset to `<repo>-data` (a dataset repo) and the adapter to `repo` (a model repo)."""
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo(f"{repo}-data", repo_type="dataset", exist_ok=True)
    api.upload_folder(folder_path=str(written["dataset"]), repo_id=f"{repo}-data", repo_type="dataset")
    if "adapter" in written:
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(written["adapter"]), repo_id=repo)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="s2d-export", description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run's folder (holds results.json and distill_set.jsonl)")
    ap.add_argument("--to", type=Path, required=True, help="the folder to write dataset/ and adapter/ into")
    ap.add_argument("--push-to-hub", metavar="REPO", help="also upload: the adapter to REPO, the set to REPO-data")
    args = ap.parse_args(argv)
    written = export(args.run, args.to)
    for name, path in written.items():
        print(f"[s2d-export] {name}: {path}", flush=True)
    if args.push_to_hub:
        try:
            push(written, args.push_to_hub)
        except Exception as e:   # no token, no network: say so in one line, the local export stands
            print(f"s2d-export: error: pushing to {args.push_to_hub} failed ({type(e).__name__}: "
                  f"{str(e).splitlines()[0] if str(e) else ''}); run `huggingface-cli login` first. The local "
                  f"export in {args.to} is complete.", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
