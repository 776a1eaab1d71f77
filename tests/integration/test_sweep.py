"""Multirun sweeps on the real model: shared System 2 generations, a failing job that does not stop the others,
the joblib launcher, the HTML report in headless Chromium, and the W&B artifacts that record which jobs share one
generation (submitit's Slurm launcher through a real Slurm: test_slurm.py)."""
import json
import os
import shutil
import subprocess
from collections import defaultdict

import pytest

from tests.integration.conftest import PYTHON, base_env, run_s2d

pytestmark = pytest.mark.integration
# The tests over the module's one joblib sweep run on one pytest-xdist worker (`--dist loadgroup`), so the sweep
# runs once, not once per worker.
SWEEP_WORKER = pytest.mark.xdist_group("joblib_sweep")

TINY_SWEEP = ["data.train_size=3", "filter=majority", "filter.samples_per_input=2", "training.max_steps=1",
              "eval.max_new_tokens=8", "technique.steps.0.max_new_tokens=12", "backend.batch_size=8"]


def _multirun(env, cwd, *args):
    return run_s2d(env, cwd, *args, check=False, multirun=True, timeout=2400)[0]


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory, models_dir):
    """2 techniques x 2 training configs x a good and a bad test size: 4 jobs run, 4 fail at validation."""
    work = tmp_path_factory.mktemp("sweep")
    env = base_env(work / "cache", models_dir)
    proc = _multirun(env, work, "technique=system1,rar_1step", "training=lora,full", "data.test_size=2,-1",
                     *TINY_SWEEP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     "hydra.sweep.dir=multirun/joblib-sweep")
    return proc, work / "multirun" / "joblib-sweep", env, work


@SWEEP_WORKER
def test_joblib_sweep_generates_once_per_technique_and_survives_a_failing_job(joblib_sweep):
    proc, sweep, _, _ = joblib_sweep
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    failed = sorted(sweep.glob("*/failed.json"))
    assert len(results) == 4, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert len(failed) == 4 and all("data.test_size=-1" in json.loads(f.read_text())["error"] for f in failed)
    assert proc.returncode != 0            # the sweep reports its failed jobs...
    generated = defaultdict(int)           # ...but every other job ran to the end
    for r in results:
        generated[r["run"]["technique"]] += r["stages"]["generate"]["generated"]
    assert dict(generated) == {"system1": 3 * 2, "rar_1step": 3 * 2}   # once per technique, not per job
    groups = {r["run"]["wandb"]["group"] for r in results}
    assert groups == {"joblib-sweep"}
    assert len({r["run"]["wandb"]["id"] for r in results}) == 4


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed: apt-get install chromium")


@SWEEP_WORKER
def test_html_report_renders_in_headless_chromium(joblib_sweep, tmp_path):
    import numpy as np
    from PIL import Image

    _, sweep, env, _ = joblib_sweep
    out = tmp_path / "report"
    subprocess.run([PYTHON["fork"], "-m", "s2d.report", str(sweep), "--out", str(out), "--wandb", "disabled"],
                   check=True, env=env, capture_output=True)
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert dom.count('<tr class="run">') == 4
    assert '<img id="pareto"' in dom and 'src="data:image/png;base64,' in dom
    shot = tmp_path / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1400,1400", url],
                   capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The plot's first run is drawn in matplotlib's default blue (31, 119, 180): the image really rendered.
    blue = (np.abs(pixels - np.array([31, 119, 180])) < 25).all(axis=-1).sum()
    assert blue > 50


@SWEEP_WORKER
def test_jobs_that_reuse_a_generation_record_its_artifact_and_the_maker_logs_it(joblib_sweep):
    """W&B lineage: the job that generated System 2's outputs logs them as an artifact named by their cache key;
    its sibling that read them from the cache records that artifact as its input (offline: in its config,
    `s2d_inputs`, because W&B refuses use_artifact offline; online it calls use_artifact)."""
    from tests.helpers.wandb_log import offline_artifacts, offline_config
    _, sweep, _, _ = joblib_sweep
    by_generation = defaultdict(list)
    for path in sorted(sweep.glob("*/results.json")):
        r = json.loads(path.read_text())
        by_generation[r["stages"]["generate"]["key"]].append((r, path.parent))
    assert len(by_generation) == 2                      # one generation per technique, two jobs each
    for key, jobs in by_generation.items():
        name = f"s2-generations-{key}"
        makers = [d for r, d in jobs if r["stages"]["generate"]["generated"] > 0]
        users = [d for r, d in jobs if r["stages"]["generate"]["generated"] == 0]
        assert len(makers) == len(users) == 1, jobs
        assert name in offline_artifacts(makers[0])
        assert name not in offline_artifacts(users[0])
        assert offline_config(users[0])["s2d_inputs"][name] == {"type": "generations", "key": key}


def test_optuna_search_runs_trials_and_reports_the_best(models_dir, tmp_path):
    """hparams_search/demo_lora's Optuna sweeper over tiny runs: each trial's app returns distilled.accuracy."""
    import yaml
    env = base_env(tmp_path / "cache", models_dir)
    proc = _multirun(env, tmp_path, "hparams_search=demo_lora", "debug=tiny", "hydra.sweeper.n_trials=2",
                     "technique=system1", "filter=none", "hydra.sweep.dir=search")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = sorted((tmp_path / "search").glob("*/results.json"))
    assert len(runs) == 2 and proc.stdout.count("[s2d] distilled.accuracy = ") == 2
    # Each trial's own parameters and score, read back from its folder.
    trials = []
    for path in runs:
        overrides = yaml.safe_load((path.parent / ".hydra" / "overrides.yaml").read_text())
        params = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides)
                  if k in ("training.learning_rate", "training.lora.r", "training.epochs")}
        trials.append((json.loads(path.read_text())["distilled"]["accuracy"], params))
    assert all(len(params) == 3 for _, params in trials)
    best = yaml.safe_load((tmp_path / "search" / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(score for score, _ in trials)        # direction: maximize
    assert best["best_params"] in [params for score, params in trials if score == best["best_value"]]
