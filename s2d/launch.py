"""Starting a training process: one (`python -m s2d.training SPEC`), or with `training.num_processes > 1`
`accelerate launch` workers (torchrun: DDP over NCCL on GPUs, gloo on CPU cores; FSDP / DeepSpeed from
`training.accelerate_config`); the checks a launch that cannot work fails with before any generation runs; and the
guard that a training dies with the run that started it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def launch(spec: dict) -> None:
    """A training process of its own: one (`python -m s2d.training`), or with `training.num_processes > 1`
    `accelerate launch` workers (torchrun: DDP over NCCL on GPUs, gloo on CPU cores; FSDP / DeepSpeed from
    `training.accelerate_config`) for models too large for one GPU. Its own process, because glibc's allocator is
    configured at process start (`training_env`)."""
    import json
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    proc = None
    try:
        proc = start(spec["training"], f.name)
        if proc.wait() != 0:
            raise RuntimeError(f"the training process exited with {_exit_status(proc.returncode)}; run the same "
                               "command again to resume from its last checkpoint (training.save_steps="
                               f"{spec['training'].get('save_steps')})")
    finally:
        # Leaving early (a preempted Slurm job's SystemExit, Ctrl-C): stop the training now. PR_SET_PDEATHSIG
        # only fires once this process is gone, which its exit handlers (W&B's among them) delay by seconds, in
        # which an orphaned training could finish and publish while the requeued job starts on the same key.
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(f.name)


def _exit_status(code: int) -> str:
    import signal
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


def start(training: dict, spec_path: str, **popen):
    """Start the training process(es) for a spec file; it dies with this process (`PR_SET_PDEATHSIG`), and so do
    its workers (`die_with_parent` in theirs), so a killed run leaves no orphan training on to race its rerun."""
    import subprocess
    import sys
    n = int(training.get("num_processes") or 1)
    cmd = accelerate_command(training, spec_path, sys.executable) if n > 1 else \
        [sys.executable, "-m", "s2d.training", spec_path]
    return subprocess.Popen(cmd, env=training_env(os.environ), preexec_fn=_death_signal_setter(), **popen)


def _death_signal_setter():
    """A function that asks the kernel to SIGKILL the calling process when its parent dies (Linux
    `prctl(PR_SET_PDEATHSIG)`), or one that does nothing elsewhere. Resolved here, not in the forked child: a
    `preexec_fn` must not import or allocate while other threads may hold those locks."""
    import ctypes
    import signal
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):   # not Linux: no such guard
        return lambda: None
    return lambda: prctl(1, int(signal.SIGKILL))   # 1 = PR_SET_PDEATHSIG


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent dies: torchrun's workers and a `python -m s2d.training`
    child would otherwise outlive a SIGKILLed launcher or s2d run."""
    _death_signal_setter()()


def training_env(environ) -> dict:
    """The training process's environment: glibc malloc on transparent huge pages (`huge_pages_tunables`; the
    logits of a step are ~0.5 GB for Qwen-0.5B at batch 8)."""
    from s2d.backends.base import huge_pages_tunables
    return {**environ, "GLIBC_TUNABLES": huge_pages_tunables(environ)}


def accelerate_command(training: dict, spec_path: str, python: str, port: int | None = None) -> list[str]:
    """`accelerate launch` over `training.num_processes` workers on this node. Without an accelerate config, plain
    DDP through torchrun (accelerate's `--multi_gpu`, which on a machine without GPUs runs gloo over the CPU cores;
    without it accelerate would start one process and train alone). A free rendezvous port of its own, so that two
    trainings of a sweep on one node do not meet on torchrun's default 29500."""
    n = int(training["num_processes"])
    cmd = [python, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1",
           "--main_process_port", str(port or free_port())]
    config = training.get("accelerate_config")
    if config:
        cmd += ["--config_file", str(accelerate_config_path(config))]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if not _cuda_available():
        cmd += ["--num_cpu_threads_per_process", str(max(1, len(os.sched_getaffinity(0)) // n))]
    return cmd + ["-m", "s2d.training", spec_path]


ACCELERATE_CONFIGS = ("fsdp", "deepspeed_zero3")   # shipped in s2d/accelerate_configs/


def accelerate_config_path(config: str) -> Path:
    path = Path(config)
    if not path.suffix:   # a shipped config by name
        path = Path(__file__).resolve().parent / "accelerate_configs" / f"{config}.yaml"
    return path


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def check_launch(training, on_gpu: bool | None = None) -> None:
    """The one-line errors for a training launch that cannot work, before any generation runs."""
    from s2d.errors import UserError
    n = 1 if training.get("num_processes") is None else int(training["num_processes"])
    if n < 1:
        raise UserError(f"training.num_processes={n}: must be >= 1 (1 = one process, N = accelerate launch workers)")
    on_gpu = _cuda_available() if on_gpu is None else on_gpu
    given = training.get("dtype", "auto")
    dtype = training_dtype(str(given), on_gpu)
    if on_gpu:
        import torch
        gpus = torch.cuda.device_count()
        if n > gpus:
            raise UserError(f"training.num_processes={n} is more than the {gpus} GPU(s) of this machine "
                            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use at most "
                            f"{gpus}")
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise UserError(f"training.dtype={given} trains in bf16, which {torch.cuda.get_device_name(0)} does "
                            "not support; set training.dtype=float32")
    elif n > len(os.sched_getaffinity(0)):   # gloo runs any number of CPU processes: they share the cores
        print(f"[s2d] WARNING: training.num_processes={n} CPU processes share {len(os.sched_getaffinity(0))} "
              "core(s)", flush=True)
    config = training.get("accelerate_config")
    if config:
        check_accelerate_config(str(config), n, dtype, str(given), on_gpu)


def check_accelerate_config(config: str, n: int, dtype: str, given: str, on_gpu: bool) -> None:
    from s2d.errors import UserError
    path = accelerate_config_path(config)
    if not path.exists():
        raise UserError(f"training.accelerate_config={config}: no such file; use one of "
                        f"{', '.join(ACCELERATE_CONFIGS)} or a path to your own accelerate config YAML")
    import yaml
    launch_cfg = yaml.safe_load(path.read_text()) or {}
    kind = str(launch_cfg.get("distributed_type", ""))
    if kind not in ("FSDP", "DEEPSPEED"):
        return
    if n == 1:
        raise UserError(f"training.accelerate_config={config} ({kind}) needs training.num_processes > 1; "
                        "it is read only by accelerate launch")
    if not on_gpu:
        # accelerate turns FSDP / DeepSpeed on only for GPU-like devices: on CPU cores it would quietly train
        # plain DDP, a full copy of the model per process (README "At scale").
        raise UserError(f"training.accelerate_config={config} ({kind}) needs GPUs: on CPU cores accelerate would "
                        "train plain DDP with a full model copy per process; for DDP on CPU leave "
                        "training.accelerate_config unset (training.num_processes=N alone)")
    if str(launch_cfg.get("mixed_precision", "no")) == "bf16" and dtype != "bfloat16":
        # The launcher's ACCELERATE_MIXED_PRECISION would win over the trainer's arguments: bf16 all the same.
        raise UserError(f"training.dtype={given} trains in {dtype}, but training.accelerate_config={config} casts "
                        "to bf16 (mixed_precision: bf16); set training.dtype=bfloat16 (or auto), or give an "
                        "accelerate config with mixed_precision: no")


def training_dtype(name: str, on_gpu: bool) -> str:
    """`training.dtype`: auto = bf16 mixed precision on a GPU, fp32 on a CPU."""
    return ("bfloat16" if on_gpu else "float32") if name == "auto" else name
