"""A sweep through a real Slurm (a single-node cluster of this machine's, tests/helpers/slurm.py): `hydra/launcher=
slurm` submits the jobs with sbatch, they share one System 2 generation, and a job that Slurm preempts mid-training
is requeued and continues from its caches (training from its last checkpoint)."""
import json
import os
import subprocess
import time

import pytest

from tests.helpers.slurm import INSTALL, LocalSlurm, missing_binaries
from tests.integration.conftest import PYTHON, base_env, engine_args

pytestmark = pytest.mark.integration

# STEPS well beyond the first checkpoint (SAVE), where the test preempts: on a fast CPU (a 2-core Xeon with AMX) 8
# steps finished before the preemption reached the job, which then had nothing to resume. Few checkpoints: the full
# fine-tune's (weights and optimizer state, ~1.6 GB each) are what the job's time goes to.
POOL, SAMPLES, STEPS, SAVE = 3, 1, 32, 8
SWEEP = ["technique=rar_1step", "training=lora,full", "backend=hf", f"data.train_size={POOL}", "data.test_size=2",
         "filter=none", f"filter.samples_per_input={SAMPLES}", "technique.steps.0.max_new_tokens=12",
         "eval.max_new_tokens=8", "backend.batch_size=8", f"training.max_steps={STEPS}", f"training.save_steps={SAVE}",
         "training.batch_size=1", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=6", "hydra.launcher.timeout_min=30",
         "hydra.launcher.signal_delay_s=30", "hydra.sweep.dir=multirun/slurm-sweep"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        message = f"Slurm is not installed (missing {', '.join(missing)}): {INSTALL} (.ci/run does)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    with LocalSlurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def test_slurm_sweep_shares_one_generation_and_a_preempted_job_resumes_from_its_caches(
        slurm, models_dir, broad_data, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "broad_data").symlink_to(broad_data, target_is_directory=True)
    env = {**base_env(cache, models_dir), **slurm.env}
    sweep = tmp_path / "multirun" / "slurm-sweep"
    launcher = subprocess.Popen([PYTHON["fork"], "-m", "s2d", "-m", *engine_args(SWEEP)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lora_job = _preempt_once_lora_checkpoint_exists(slurm, cache, launcher)
        out, _ = launcher.communicate(timeout=1200)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, out[-4000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert sorted(r["run"]["training"] for r in results) == ["full", "lora"], out[-3000:]
    assert not list(sweep.glob("*/failed.json"))   # the preempted attempt's record, superseded by its rerun

    # One System 2 generation in the cache, made once: a second job generating too would have appended its own
    # records to the same file.
    generations = list(cache.glob("generations/train-*/records.jsonl"))
    assert len(generations) == 1
    assert len(generations[0].read_text().splitlines()) == POOL * SAMPLES
    assert sum(r["stages"]["generate"]["generated"] for r in results) <= POOL * SAMPLES

    # The preempted job: requeued by submitit (scontrol requeue), restarted by Slurm, then resumed its training.
    assert int(slurm.job(lora_job)["Restarts"]) == 1
    log = "".join(p.read_text() for p in sweep.glob(f".submitit/{lora_job}/*_log.out"))
    assert "this job is preempted" in log and "[s2d] training resumes from " in log, log[-3000:]
    trained = json.loads((sweep / "0_last_letter-rar_1step-none-lora" / "checkpoint" / "s2d_train.json")
                         .read_text())
    assert trained["resumed_from_step"] >= SAVE and trained["steps"] == STEPS
    lora = next(r for r in results if r["run"]["training"] == "lora")
    assert lora["stages"]["generate"]["generated"] == 0   # its rerun read the generation from the cache

    report = tmp_path / "report"
    subprocess.run([PYTHON["fork"], "-m", "s2d.report", str(sweep), "--out", str(report), "--wandb", "disabled"],
                   check=True, env=env, capture_output=True)
    assert (report / "report.html").read_text().count("<tr class='run'>") == 2


def _preempt_once_lora_checkpoint_exists(slurm, cache, launcher) -> str:
    """Wait until the LoRA job (array task 0: the sweep's first job) has a training checkpoint, then preempt it as
    Slurm does (SIGTERM, then submitit's USR2): its handler requeues the job. Returns the job's id (`<array>_0`)."""
    deadline = time.time() + 900
    while time.time() < deadline:
        assert launcher.poll() is None, launcher.stdout.read()[-4000:]
        checkpoints = [p for p in cache.glob("checkpoints/.*.staging/trainer/checkpoint-*")
                       if (p / "trainer_state.json").exists() and (p / "adapter_model.safetensors").exists()]
        if checkpoints:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the LoRA job wrote no training checkpoint within 15 minutes")
    jobs = dict(line.split() for line in slurm.run("squeue", "-h", "-r", "-o", "%K %i").splitlines())
    job = jobs["0"]
    slurm.run("scancel", "--signal=TERM", job)
    slurm.run("scancel", "--signal=USR2", job)
    # Slurm holds a requeued job two minutes before it is eligible again (Reason=BeginTime): release it now, as an
    # administrator could, so the test does not wait them out.
    deadline = time.time() + 120
    while slurm.job(job)["JobState"] != "PENDING":
        assert time.time() < deadline, f"job {job} was not requeued: {slurm.job(job)}"
        time.sleep(0.5)
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    return job
