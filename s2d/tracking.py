"""Weights & Biases lifecycle: one run per Hydra job, closed even when the job fails.

Offline when no API key is configured (never crash for want of network; `wandb sync` later), online when the user
is logged in, off with `logger=none`. results.json stays the record of truth; W&B mirrors it, and never takes a
run down: an online start that cannot reach the server within `logger.init_timeout` seconds falls back to offline
with one line saying so, and a failure while logging or finishing is one warning line (results.json and every
artefact are written before W&B is touched at the end of a run).
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
    """{"system1": {"accuracy": 0.3}} -> {"system1/accuracy": 0.3}: the summary keys mirror results.json (an
    interval `ci95: [lo, hi]` as `ci95_low` and `ci95_high`)."""
    out = {}
    for k, v in block.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
        elif k == "ci95" and isinstance(v, list) and len(v) == 2:   # an interval: two scalars W&B can chart
            out[f"{key}_low"], out[f"{key}_high"] = v
    return out


def loop_summary(results: dict) -> dict:
    """Summary keys of the loops (s2d/loops.py): `round/<k>/distilled/accuracy`, `round/<k>/curation/kept_fraction`,
    `task/<name>/joint/accuracy`, `task/<name>/joint_minus_distilled`, ..."""
    out = {}
    for r in results.get("rounds") or []:
        out.update(flatten({k: v for k, v in r.items() if k not in ("round", "stages")}, f"round/{r['round']}/"))
    for name, t in (results.get("tasks") or {}).items():
        out.update(flatten({k: v for k, v in t.items() if k != "stages"}, f"task/{name}/"))
    return out


ROUND_COLUMNS = ("round", "system1_accuracy", "system2_accuracy", "system2_tokens", "distilled_accuracy",
                 "distilled_tokens", "kept_fraction", "target_accuracy")


def round_row(r: dict) -> list:
    """One round as a row of ROUND_COLUMNS (the W&B `rounds` table and the per-round chart)."""
    return [r["round"], r["system1"]["accuracy"], r["system2"]["accuracy"], r["system2"]["tokens_per_input"],
            r["distilled"]["accuracy"], r["distilled"]["tokens_per_input"], r["curation"]["kept_fraction"],
            r["curation"].get("target_accuracy")]


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
        init = dict(project=cfg.logger.project, entity=cfg.logger.entity, group=self.group, job_type="distill",
                    name=str(cfg.name), config=plain(cfg), dir=str(run_dir), id=run_id, resume="allow",
                    reinit="finish_previous")
        timeout = float(cfg.logger.get("init_timeout") or 30)
        try:
            self.run = wandb.init(**init, mode=mode, settings=wandb.Settings(silent=True, init_timeout=timeout))
        except Exception as e:   # wandb raises CommError, UsageError, TimeoutError, ... for an unreachable server
            if mode != "online":
                raise
            mode = "offline"
            wandb.teardown()   # the failed start still holds the run id in wandb's service process
            self.run = wandb.init(**init, mode="offline", settings=wandb.Settings(silent=True))
            where = os.environ.get("WANDB_BASE_URL", "the W&B server")
            print(f"[s2d] W&B: cannot reach {where} within {timeout:.0f}s ({type(e).__name__}: "
                  f"{first_line(e)}); logging offline instead: upload later with `wandb sync "
                  f"{Path(self.run.dir).parent}`", flush=True)
        self.info = {"project": str(cfg.logger.project), "group": self.group, "id": self.run.id, "mode": mode}
        print(f"[s2d] W&B run {self.run.id} ({mode}, group {self.group}) in {run_dir / 'wandb'}", flush=True)

    def log_results(self, results: dict, eval_samples: dict, distill_set: list[dict], distill_path: str | None,
                    log_adapter_path: str | None = None) -> None:
        """Mirror results.json into the run; a failure is one warning line, never the run's end."""
        if self.run is None:
            return
        try:
            self._log_results(results, eval_samples, distill_set, distill_path, log_adapter_path)
        except Exception as e:
            print(f"[s2d] WARNING: W&B logging failed ({type(e).__name__}: {first_line(e)}); results.json is "
                  "complete", flush=True)

    def _log_results(self, results, eval_samples, distill_set, distill_path, log_adapter_path) -> None:
        wandb = self.wandb
        self.run.summary.update({**flatten({k: v for k, v in results.items() if k not in ("run", "rounds", "tasks")}),
                                 **loop_summary(results)})
        tables = {"samples": self._samples_table(eval_samples), "distill_set": self._distill_table(distill_set)}
        if results.get("broad"):
            tables["broad"] = self._broad_table(results["broad"])
        if results.get("rounds"):
            tables["rounds"] = wandb.Table(columns=list(ROUND_COLUMNS),
                                           data=[round_row(r) for r in results["rounds"]])
        if results.get("tasks"):
            cols = ["task", "technique", "filter", "weight", "system1_accuracy", "system2_accuracy",
                    "distilled_accuracy", "joint_accuracy", "joint_minus_distilled"]
            tables["tasks"] = wandb.Table(columns=cols, data=[
                [name, t["technique"], t["filter"], t["weight"], t["system1"]["accuracy"], t["system2"]["accuracy"],
                 t["distilled"]["accuracy"], t["joint"]["accuracy"], t["joint_minus_distilled"]]
                for name, t in results["tasks"].items()])
        self.run.log(tables)
        if results.get("rounds"):   # a round axis: W&B line charts of each metric over rounds
            self.run.define_metric("per_round/*", step_metric="round")
            for r in results["rounds"]:
                self.run.log({"round": r["round"],
                              **{f"per_round/{c}": v for c, v in zip(ROUND_COLUMNS[1:], round_row(r)[1:])
                                 if v is not None}})
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
        cols = ["benchmark", "metric", "n", "base", "distilled", "delta", "ci95_low", "ci95_high", "p_holm",
                "verdict", "detectable_drop"]
        table = self.wandb.Table(columns=cols)
        for name, b in broad.items():
            low, high = b.get("ci95") or (None, None)
            table.add_data(name, b["metric"], b["n"], b["base"], b["distilled"], b["delta"], low, high,
                           b.get("p_holm"), b.get("verdict"), b.get("detectable_drop"))
        return table

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            try:
                self.run.finish(exit_code=exit_code)
            except Exception as e:
                print(f"[s2d] WARNING: W&B could not finish the run ({type(e).__name__}: {first_line(e)}); "
                      f"its local files are in {self.run.dir}", flush=True)
            self.run = None


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]
