"""A real single-node Slurm cluster on this machine, for the tests of the Slurm launcher (Debian's `slurm-wlm`
22.05 + `munge`, as root): munged, slurmctld and slurmd in the foreground of processes of ours, on loopback ports
of their own, with every file (config, key, state, logs) under one folder. No accounting database: `sacct`
answers nothing, which submitit tolerates (it waits for a job's result file).

    python -m tests.helpers.slurm /tmp/my-slurm      # start one by hand; prints `export SLURM_CONF=...`

.ci/run installs the packages (`apt-get install slurmctld slurmd slurm-client munge`).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from s2d.launch import free_port

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scontrol", "scancel")
INSTALL = "apt-get install -y slurmctld slurmd slurm-client munge"


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class LocalSlurm:
    """`with LocalSlurm(folder) as slurm:` a running cluster; `slurm.env` holds SLURM_CONF for the clients."""

    def __init__(self, folder: Path, cpus: int | None = None, memory_mb: int = 16000):
        self.folder = Path(folder)
        self.cpus = cpus or os.cpu_count()   # the hardware's, whatever share of it the starting process has
        self.memory_mb = memory_mb
        self.node = socket.gethostname().split(".")[0]
        self.procs: list[subprocess.Popen] = []
        self.conf = self.folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        f = self.folder
        for d in ("state", "spool", "log"):
            (f / d).mkdir(parents=True, exist_ok=True)
        f.chmod(0o755)   # munged wants its socket's folder traversable by everyone
        self.conf.write_text("\n".join([
            "ClusterName=s2dtest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", f"AuthInfo=socket={f / 'munge.sock'}",
            f"StateSaveLocation={f / 'state'}", f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}", f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none", "ReturnToService=2", "SchedulerType=sched/backfill",
            "MinJobAge=3600",        # finished jobs stay in `scontrol show job` (no accounting database here)
            "KillWait=5",            # SIGTERM -> SIGKILL grace on scancel / time limit
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))

    def start(self) -> "LocalSlurm":
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"Slurm is not installed (missing {', '.join(missing)}): {INSTALL}")
        self.write_config()
        f = self.folder
        key = f / "munge.key"
        if not key.exists():
            subprocess.run([_binary("mungekey"), "-c", "-k", str(key)], check=True)
        log = open(f / "log" / "daemons.out", "ab")
        self.procs.append(subprocess.Popen(
            [_binary("munged"), "-F", "--force", f"--socket={f / 'munge.sock'}", f"--key-file={key}",
             f"--pid-file={f / 'munged.pid'}", f"--log-file={f / 'log' / 'munged.log'}",
             f"--seed-file={f / 'munge.seed'}"], stdout=log, stderr=log, start_new_session=True))
        self._wait(lambda: (f / "munge.sock").exists(), "munged's socket")
        for daemon in ("slurmctld", "slurmd"):
            extra = ["-N", self.node] if daemon == "slurmd" else ["-i"]   # -i: ignore stale state
            self.procs.append(subprocess.Popen([_binary(daemon), "-D", "-f", str(self.conf), *extra],
                                               stdout=log, stderr=log, env=self.env, start_new_session=True))
        self._wait(self._node_idle, "the node to come up idle (sinfo)")
        return self

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, env=self.env)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        logs = "".join(p.read_text()[-1500:] for p in sorted((self.folder / "log").glob("*")) if p.is_file())
        self.stop()
        raise RuntimeError(f"local Slurm: no {what} within {timeout:.0f}s; logs:\n{logs}")

    def run(self, *cmd: str, check: bool = True) -> str:
        out = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        return out.stdout

    def job(self, job_id: str) -> dict:
        """`scontrol show job` as key -> value (JobState, Restarts, ...)."""
        text = self.run("scontrol", "show", "job", "-o", job_id)
        return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    import sys
    cluster = LocalSlurm(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/s2d-slurm")).start()
    print(f"export SLURM_CONF={cluster.conf}   # local Slurm up; Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        cluster.stop()
