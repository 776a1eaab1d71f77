"""Weights & Biases lifecycle: one run per Hydra job, closed even when the job fails.

Offline when no API key is configured (never crash for want of network; `wandb sync` later), online when the user
is logged in, off with `logger=none`. results.json stays the record of truth; W&B mirrors it.
"""
from __future__ import annotations

import os
from pathlib import Path

from s2d.cache import cache_key, plain


def wandb_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def flatten(block: dict, prefix: str = "") -> dict:
    """{"system1": {"accuracy": 0.3}} -> {"system1/accuracy": 0.3}: the summary keys mirror results.json."""
    out = {}
    for k, v in block.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
    return out


class Tracker:
    def __init__(self, cfg, run_dir: Path, identity: dict | None = None):
        self.run = None
        if cfg.logger.name == "none":
            return
        import wandb
        mode = wandb_mode(str(cfg.logger.mode))
        if mode == "disabled":
            return
        self.wandb = wandb
        identity = identity or {}
        self.group = str(cfg.group if cfg.get("group") else identity.get("group") or cfg.name)
        run_id = cache_key({"project": str(cfg.logger.project), "group": self.group,
                            "overrides": identity.get("overrides", [])}, length=12)
        # API keys never go into the config we log: only the resolved experiment config.
        self.run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, group=self.group,
                              job_type="distill", name=str(cfg.name), config=plain(cfg), dir=str(run_dir),
                              id=run_id, resume="allow", mode=mode, reinit="finish_previous",
                              settings=wandb.Settings(silent=True))
        self.info = {"project": str(cfg.logger.project), "group": self.group, "id": self.run.id, "mode": mode}
        print(f"[s2d] W&B run {self.run.id} ({mode}, group {self.group}) in {run_dir / 'wandb'}", flush=True)

    def log_results(self, results: dict, eval_samples: dict, distill_set: list[dict], distill_path: str | None,
                    log_adapter_path: str | None = None) -> None:
        if self.run is None:
            return
        wandb = self.wandb
        self.run.summary.update(flatten({k: v for k, v in results.items() if k != "run"}))
        tables = {"samples": self._samples_table(eval_samples), "distill_set": self._distill_table(distill_set)}
        if results.get("broad"):
            tables["broad"] = self._broad_table(results["broad"])
        self.run.log(tables)
        if distill_path:
            art = wandb.Artifact(f"distill-set-{self.run.id}", type="dataset",
                                 metadata=results.get("curation", {}))
            art.add_file(distill_path, name="distill_set.json")
            self.run.log_artifact(art)
        if log_adapter_path:
            art = wandb.Artifact(f"checkpoint-{self.run.id}", type="model")
            art.add_dir(log_adapter_path)
            self.run.log_artifact(art)

    def _samples_table(self, samples: dict):
        cols = ["id", "input", "gold", "system1_answer", "system2_trace", "system2_answer", "distilled_answer",
                "distilled_correct"]
        table = self.wandb.Table(columns=cols)
        by_id = {row: {s["id"]: s for s in rows} for row, rows in samples.items()}
        for s2 in samples["system2"]:
            s1, d = by_id["system1"][s2["id"]], by_id["distilled"][s2["id"]]
            trace = "\n---\n".join(f"[{c['step']}] {c['output']}" for c in s2["trace"])
            table.add_data(s2["id"], s2["question"], s2["gold"], s1["predicted"], trace, s2["predicted"],
                           d["predicted"], d["correct"])
        return table

    def _distill_table(self, examples: list[dict]):
        table = self.wandb.Table(columns=["id", "input", "votes", "target", "target_correct"])
        for e in examples:
            table.add_data(e["id"], e["prompt"], " | ".join(str(v) for v in e["votes"]), e["target"],
                           e["target_correct"])
        return table

    def _broad_table(self, broad: dict):
        cols = ["benchmark", "metric", "n", "base", "distilled", "delta", "stderr", "regressed"]
        table = self.wandb.Table(columns=cols)
        for name, b in broad.items():
            table.add_data(name, *(b[c] for c in cols[1:]))
        return table

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
