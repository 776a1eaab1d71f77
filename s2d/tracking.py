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
from s2d.loop_rows import ROUND_COLUMNS, TASK_COLUMNS, ends, flat, round_view, task_view


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
    """Summary keys of the loops (s2d/loops/): `round/<k>/distilled/accuracy`, `round/<k>/curation/kept_fraction`,
    `task/<name>/joint/accuracy`, `task/<name>/joint_minus_distilled`, ..."""
    out = {}
    for r in results.get("rounds") or []:
        out.update(flatten({k: v for k, v in r.items() if k not in ("round", "stages")}, f"round/{r['round']}/"))
    for name, t in (results.get("tasks") or {}).items():
        out.update(flatten({k: v for k, v in t.items() if k != "stages"}, f"task/{name}/"))
    return out


def round_row(r: dict) -> list:
    """One round as a row of ROUND_COLUMNS (the W&B `rounds` table and the per-round chart)."""
    return flat(round_view(r))


def task_row(name: str, t: dict) -> list:
    """One task of a multi-task run as a row of TASK_COLUMNS (the W&B `tasks` table)."""
    return flat(task_view(name, t))


RESULT_COLUMNS = ("job", "group", "task", "model", "technique", "filter", "training", "seed", "round", "row", "arm",
                  "accuracy", "ci95_low", "ci95_high", "tokens_per_input", "n", "vs_system1", "vs_system1_ci95_low",
                  "vs_system1_ci95_high", "vs_system1_p")


def row_arm(name: str) -> str:
    """A row name's arm: system1, system2, system1_matched or distilled (ablations and prompt variants included)."""
    for arm in ("system1_matched", "system1", "system2", "distilled", "joint"):
        if name.startswith(arm):
            return "distilled" if arm == "joint" else arm
    return name


def results_rows(results: dict, group: str | None = None) -> list[list]:
    """results.json in long format, one line per scored row (RESULT_COLUMNS): what W&B merges across a group's jobs
    into one tokens-vs-accuracy view. A single run's rows; a continuous run's every round; a multi-task run's pooled
    rows and each task's (the joint model as `joint`). `vs_system1`: the row's paired difference from System 1 (a
    round's: from round 1's)."""
    run = results["run"]
    fixed = {"job": run.get("name"), "group": group, "task": run.get("task"), "model": run.get("model"),
             "technique": run.get("technique"), "filter": run.get("filter"), "training": run.get("training"),
             "seed": run.get("seed"), "round": None}
    out = []
    if results.get("rounds"):
        for r in results["rounds"]:
            out += _block_rows(r, r.get("versus_round1") or {}, {**fixed, "round": r["round"]})
        return out
    out += _block_rows(results, _versus(results.get("comparisons")), fixed)
    for name, t in (results.get("tasks") or {}).items():
        out += _block_rows(t, _versus(t.get("comparisons")),
                           {**fixed, "task": name, "technique": t["technique"], "filter": t["filter"]}, ("joint",))
    return out


def _versus(compared: dict | None) -> dict:
    """Row name -> its comparison against (its variant's) System 1."""
    out = {}
    for pair, diff in (compared or {}).items():
        b, a = pair.split(" - ")
        if a == "system1" or a.startswith("system1@"):
            out[b] = diff
    return out


def _block_rows(block: dict, versus: dict, fixed: dict, extra: tuple = ()) -> list[list]:
    names = ["system1", "system2", "system1_matched", "distilled", "distilled_per_task", *extra]
    rows = [(n, block[n], fixed) for n in names if block.get(n)]
    rows += [(f"distilled[{n}]", a["distilled"], {**fixed, "filter": n})
             for n, a in (block.get("ablations") or {}).items()]
    rows += [(n, m, fixed) for n, m in (block.get("variants") or {}).items()]
    out = []
    for name, m, cols in rows:
        diff = versus.get(name) or {}
        out.append([*(cols[c] for c in RESULT_COLUMNS[:9]), name, row_arm(name), m.get("accuracy"),
                    *ends(m.get("ci95")), m.get("tokens_per_input"), m.get("n"), diff.get("delta"),
                    *ends(diff.get("ci95")), diff.get("p")])
    return out


SAMPLE_ROWS = ("system1", "system2", "distilled")
SAMPLE_COLUMNS = ("id", "input", "gold", *(f"{row}_{c}" for row in SAMPLE_ROWS
                                          for c in ("output", "answer", "correct", "tokens")), "system2_trace")


def sample_rows(samples: dict[str, list[dict]]) -> list[list]:
    """Per test item, System 1's, System 2's and the distilled model's output, extracted answer, correctness and
    tokens side by side (SAMPLE_COLUMNS), plus System 2's full trace: the W&B `samples` table."""
    by_id = {row: {s["id"]: s for s in samples[row]} for row in SAMPLE_ROWS if row in samples}
    out = []
    for s2 in samples["system2"]:
        cells = [s2["id"], s2["question"], s2["gold"]]
        for row in SAMPLE_ROWS:
            s = by_id.get(row, {}).get(s2["id"]) or {}
            cells += [s.get("output"), s.get("predicted"), s.get("correct"), s.get("tokens")]
        cells.append("\n---\n".join(f"[{c['step']}] {c['output']}" for c in s2.get("trace") or []))
        out.append(cells)
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
        self.info = {"project": str(cfg.logger.project), "entity": cfg.logger.entity, "group": self.group,
                     "id": self.run.id, "mode": mode}
        self._child = {"project": str(cfg.logger.project), "entity": cfg.logger.entity, "group": self.group,
                       "dir": str(run_dir), "mode": mode, "name": str(cfg.name), "init_timeout": timeout}
        print(f"[s2d] W&B run {self.run.id} ({mode}, group {self.group}) in {run_dir / 'wandb'}", flush=True)

    def job_log(self, prefix: str = "") -> JobLog | None:
        """What the stages log while the job runs (Context.log), keys under `prefix` (a round's, a task's)."""
        return None if self.run is None else JobLog(self, prefix)

    def log_results(self, results: dict, eval_samples: dict, distill_set: list[dict], distill_path: str | None,
                    log_adapter_path: str | None = None, generations_path: str | None = None) -> None:
        """Mirror results.json into the run; a failure is one warning line, never the run's end."""
        if self.run is None:
            return
        try:
            self._log_results(results, eval_samples, distill_set, distill_path, log_adapter_path)
            self._log_inputs(results, generations_path, distill_path)
        except Exception as e:
            print(f"[s2d] WARNING: W&B logging failed ({type(e).__name__}: {first_line(e)}); results.json is "
                  "complete", flush=True)

    def _log_results(self, results, eval_samples, distill_set, distill_path, log_adapter_path) -> None:
        wandb = self.wandb
        self.run.summary.update({**flatten({k: v for k, v in results.items() if k not in ("run", "rounds", "tasks")}),
                                 **loop_summary(results)})
        tables = {"samples": self._samples_table(eval_samples), "distill_set": self._distill_table(distill_set),
                  "results": wandb.Table(columns=list(RESULT_COLUMNS), data=results_rows(results, self.group))}
        if results.get("broad"):
            tables["broad"] = self._broad_table(results["broad"])
        if results.get("rounds"):
            tables["rounds"] = wandb.Table(columns=list(ROUND_COLUMNS),
                                           data=[round_row(r) for r in results["rounds"]])
        if results.get("tasks"):
            tables["tasks"] = wandb.Table(columns=list(TASK_COLUMNS),
                                          data=[task_row(name, t) for name, t in results["tasks"].items()])
        self.run.log(tables)
        if results.get("rounds"):   # a round axis: W&B line charts of each metric over rounds
            self.run.define_metric("per_round/*", step_metric="round")
            for r in results["rounds"]:
                self.run.log({"round": r["round"],
                              **{f"per_round/{c}": v for c, v in zip(ROUND_COLUMNS[1:], round_row(r)[1:])
                                 if v is not None and c != "cached"}})
        if log_adapter_path:
            art = wandb.Artifact(f"checkpoint-{self.run.id}", type="model")
            art.add_dir(log_adapter_path)
            self.run.log_artifact(art)

    def _log_inputs(self, results: dict, generations_path: str | None, distill_path: str | None) -> None:
        """System 2's generations and the distillation set as artifacts named by their cache keys: the job that
        made one logs it; a job that found it in the cache uses it (W&B's lineage graph then shows which jobs
        share one generation). W&B refuses `use_artifact` offline (wandb_run.py: "Cannot use artifact when in
        offline mode"), so an offline job records what it used in its config (`s2d_inputs`) instead."""
        stages, run = results.get("stages") or {}, results["run"]
        meta = {k: run.get(k) for k in ("model", "technique", "task", "seed", "data_seed")}
        made = []
        gen = _last_stage(stages, "generate")
        if generations_path and gen.get("key"):
            made.append((f"s2-generations-{gen['key']}", "generations", generations_path, "records.jsonl",
                         bool(gen.get("generated")), {**meta, "key": gen["key"], "records": gen.get("generated", 0)
                                                      + gen.get("from_cache", 0)}))
        # A multi-task run's set is the mix of its tasks' sets: named by the mix's key.
        cur = {"key": results["joint"]["key"], "cached": False} if (results.get("joint") or {}).get("key") \
            else _last_stage(stages, "curate")
        if distill_path and cur.get("key"):
            made.append((f"distill-set-{cur['key']}", "dataset", distill_path, "distill_set.jsonl",
                         not cur.get("cached"), {**meta, **(results.get("curation") or {}), "key": cur["key"]}))
        used = {}
        for name, kind, path, file_name, produced, metadata in made:
            art = self.wandb.Artifact(name, type=kind, metadata=metadata)
            art.add_file(path, name=file_name)
            if produced:
                self.run.log_artifact(art)
            elif self.info.get("mode") == "offline":
                used[name] = {"type": kind, "key": metadata["key"]}
            else:
                self._use(art, name)
        if used:
            self.run.config.update({"s2d_inputs": used}, allow_val_change=True)

    def _use(self, art, name: str) -> None:
        """Use the logged artifact `name`; one this project has never seen (its maker ran offline and was not
        synced) is logged here instead, so the lineage starts at this job."""
        try:
            self.run.use_artifact(f"{name}:latest")
        except Exception:
            self.run.log_artifact(art)

    def _samples_table(self, samples: dict):
        return self.wandb.Table(columns=list(SAMPLE_COLUMNS), data=sample_rows(samples))

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


def _last_stage(stages: dict, name: str) -> dict:
    """The stage `name`'s entry, or a loop's last one (`round3/curate`); {} without one."""
    return next((s for k, s in reversed(list(stages.items())) if k == name or k.endswith("/" + name)), {})


class JobLog:
    """The live side of a job's W&B run, for the stages: each stage's time as it ends, and the settings of the run
    a training process reports its curves to. Never fails the job: a W&B error is one warning line."""

    def __init__(self, tracker: Tracker, prefix: str = ""):
        self.tracker, self.prefix = tracker, prefix

    def stage_done(self, name: str, info: dict) -> None:
        run = self.tracker.run
        if run is None:
            return
        try:
            run.log({f"stages/{self.prefix}{name}/wall_s": info["wall_s"],
                     f"stages/{self.prefix}{name}/cached": int(bool(info["cached"]))})
        except Exception as e:
            print(f"[s2d] WARNING: W&B could not log stage {name} ({type(e).__name__}: {first_line(e)})", flush=True)

    def training_run(self, checkpoint_key: str) -> dict | None:
        """`wandb.init` arguments for the training curves of one checkpoint: a `train` run in the job's group
        (TRL's own W&B reporting inside the training process), linked both ways: its config names the job's run,
        the job's summary names it (`training/<checkpoint>/wandb_run`)."""
        run = self.tracker.run
        if run is None:
            return None
        child = dict(self.tracker._child)
        run_id = f"{run.id}-train-{checkpoint_key[:8]}"
        run.summary[f"training/{self.prefix}{checkpoint_key}/wandb_run"] = run_id
        return {"init": {"project": child["project"], "entity": child["entity"], "group": child["group"],
                         "job_type": "train", "name": f"{child['name']}/{self.prefix}train", "id": run_id,
                         "resume": "allow", "dir": child["dir"], "mode": child["mode"],
                         "config": {"job_run": run.id, "checkpoint": checkpoint_key}},
                "init_timeout": child["init_timeout"]}


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]
