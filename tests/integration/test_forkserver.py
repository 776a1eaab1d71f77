"""The fork server the integration tests start their runs from (tests/helpers/forkserver.py) stands in for `python`:
the caller's argv, environment, folder, descriptors and exit status, signals forwarded, and its own children too."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.integration

PROBE = """
import json, os, sys
fd = int(sys.argv[1])
os.write(fd, json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": os.environ.get("PROBE"),
                         "executable": sys.executable, "vllm_preloaded": "vllm" in sys.modules}).encode())
print("to stdout"); print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[2]))
"""


def test_child_runs_with_the_callers_argv_environment_folder_and_descriptors(forkserver, tmp_path):
    import json
    assert forkserver is not None and PYTHON["fork"] == str(forkserver)
    read, write = os.pipe()
    proc = subprocess.run([PYTHON["fork"], "-c", PROBE, str(write), "3"], cwd=tmp_path, pass_fds=(write,),
                          env={**os.environ, "PROBE": "seen"}, capture_output=True, text=True, timeout=60)
    os.close(write)
    seen = json.loads(os.read(read, 65536))
    os.close(read)
    assert proc.returncode == 3 and proc.stdout == "to stdout\n" and proc.stderr == "to stderr\n"
    assert seen == {"argv": [str(write), "3"], "cwd": str(tmp_path), "env": "seen", "executable": str(forkserver),
                    "vllm_preloaded": True}


def test_a_forwarded_signal_ends_the_child_and_the_caller_dies_of_it(forkserver, tmp_path):
    started = tmp_path / "started"
    code = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(120)"
    proc = subprocess.Popen([PYTHON["fork"], "-c", code])
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_a_child_started_by_a_child_goes_through_the_server(forkserver):
    code = ("import subprocess, sys; "
            "print(subprocess.run([sys.executable, '-c', 'import sys; print(sys.executable)'], "
            "capture_output=True, text=True, check=True).stdout.strip())")
    out = subprocess.run([PYTHON["fork"], "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == str(forkserver) != sys.executable


def test_a_killed_caller_takes_its_child_down(forkserver, tmp_path):
    """SIGKILL cannot be forwarded: the child sees its caller's end of the connection close and kills itself."""
    pid_file = tmp_path / "pid"
    code = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(120)"
    proc = subprocess.Popen([PYTHON["fork"], "-c", code])
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.kill()
    proc.wait()
    deadline = time.time() + 30
    while _alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for the server to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_another_openmp_thread_count_gets_a_fresh_python(forkserver):
    """libgomp reads OMP_NUM_THREADS once, when torch loads it: a forked child could not honour another count."""
    probe = ["-c", "import sys; print('vllm' in sys.modules, sys.executable)"]
    same = subprocess.run([PYTHON["fork"], *probe], capture_output=True, text=True, timeout=60, check=True)
    other = subprocess.run([PYTHON["fork"], *probe], env={**os.environ, "OMP_NUM_THREADS": "7"},
                           capture_output=True, text=True, timeout=60, check=True)
    assert same.stdout.split() == ["True", str(forkserver)]
    assert other.stdout.split() == ["False", sys.executable]


def test_the_child_runs_on_the_callers_cores(forkserver):
    """A pytest-xdist worker's share of the cores (tests/conftest.py) holds for the runs it starts."""
    from tests.conftest import ALL_CORES
    last = max(ALL_CORES)
    out = subprocess.run([PYTHON["fork"], "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                         preexec_fn=lambda: os.sched_setaffinity(0, {last}), capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == str([last])
