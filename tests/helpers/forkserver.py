"""A fork server for the integration tests' Python processes: the imports paid once per session, not per process.

Every `python -m s2d ...` a test starts, and every Python process that run starts in turn (its vLLM engine worker,
its training process, submitit's job), spends most of a tiny run importing: `from vllm import LLM` takes ~20 s on
this 2-core CPU, TRL's SFTTrainer ~13 s, and a tiny run's model calls take a few seconds. The server imports
s2d, vLLM, TRL, PEFT, lm-eval and W&B once, then forks one child per request; the child becomes the requested
process (argv, environment, working folder, CPU affinity and open file descriptors of the caller) and runs the same
code that `python` would. The caller is a small stdlib-only client (`client_source`) started in place of `python`: it
forwards its descriptors (SCM_RIGHTS) and its signals, waits, and exits with the child's status. The child's
`sys.executable` is the client, so the processes the product starts go through the server too.

What differs from a fresh interpreter, and why the tests accept it:
- modules already imported are not re-imported, so environment variables read at import time keep the server's
  values (vLLM's logging level, huggingface_hub's offline flags): the server starts with the session's environment,
  and a test that sets such a variable runs `python` itself (`conftest.run_s2d(..., fork=False)`);
- libgomp reads OMP_NUM_THREADS when torch loads it: a process asking for another thread count than the server's
  (a vLLM replica bound to one core) gets a fresh `python`, as one whose identity is its pid does (`FRESH_MODULES`);
- glibc reads GLIBC_TUNABLES at process start: the training process's huge-page malloc (s2d.training) is the
  server's setting, which only changes speed;
- a killed client cannot forward SIGKILL: the child's lifeline (`_watch`) sees the connection close and kills its
  own process group, a moment later than the kernel would have; test_resume.py's killed run starts `python`
  itself, so the real process tree and start path stay tested.
Run as `python -m tests.helpers.forkserver SOCKET CLIENT`: writes the client script to CLIENT, serves on SOCKET.
"""
import atexit
import fcntl
import gc
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
import time
import traceback
import types
import warnings
import weakref

from s2d.cache import atomic_write_text

# Programs the client replaces itself with a fresh `python` for, keeping its pid: submitit's local job controller
# names its log files after its own pid, which submitit read off the process it started.
FRESH_MODULES = ("submitit.local._local",)
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
MAX_REQUEST = 1 << 20   # argv + environment, as JSON
HIGH_FD = 1000          # received descriptors are parked up here before being moved onto the caller's numbers

CLIENT = r'''
# A stand-in for `python ARGS` (tests/helpers/forkserver.py): the fork server runs ARGS with this process's argv,
# environment, working folder and open descriptors; signals are forwarded; the exit status is the child's.
import json, os, signal, socket, sys

def main():
    # A fresh python for a process that must keep this pid, or one that wants another OpenMP thread count than the
    # server's (libgomp reads OMP_NUM_THREADS when torch loads it: a forked vLLM replica bound to one core would
    # keep two threads on it, 5x slower).
    if any(module in sys.argv for module in FRESH) or os.environ.get("OMP_NUM_THREADS", OMP_DEFAULT) != OMP_THREADS:
        os.execv(PYTHON, [PYTHON, *sys.argv[1:]])
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
            fds.append(int(name))
        except OSError:
            pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(SOCKET)
    fds = [fd for fd in fds if fd != sock.fileno()]
    request = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "fds": fds,
               "cpus": sorted(os.sched_getaffinity(0))}
    socket.send_fds(sock, [json.dumps(request).encode()], fds)
    pid = int(sock.recv(64))

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for name in SIGNALS:
        signal.signal(getattr(signal, name), forward)
    code = int(sock.recv(64) or 1)
    if code < 0:   # killed by a signal: die of the same one
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)

main()
'''


def client_source(socket_path: str, python: str = sys.executable) -> str:
    """The client script: `#!python -S` (no site: it needs the standard library only, and starts in ~20 ms)."""
    omp_default = str(len(os.sched_getaffinity(0)))   # libgomp's thread count when OMP_NUM_THREADS is unset
    return (f"#!{python} -S\nSOCKET = {socket_path!r}\nSIGNALS = {FORWARDED_SIGNALS!r}\nPYTHON = {python!r}\n"
            f"FRESH = {FRESH_MODULES!r}\nOMP_DEFAULT = {omp_default!r}\n"
            f"OMP_THREADS = {os.environ.get('OMP_NUM_THREADS', omp_default)!r}\n" + CLIENT)


def preload() -> None:
    """What the tests' processes import: vLLM before TRL (importing trl sets VLLM_LOGGING_LEVEL=ERROR, which vLLM's
    logger would read at its own import)."""
    import lm_eval  # noqa: F401
    import lm_eval.models.huggingface  # noqa: F401
    import peft  # noqa: F401
    import transformers  # noqa: F401
    import vllm  # noqa: F401
    import wandb  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from trl import SFTConfig, SFTTrainer  # noqa: F401
    from vllm import LLM, SamplingParams  # noqa: F401

    import s2d.backends.vllm.serve  # noqa: F401
    import s2d.cli  # noqa: F401
    import s2d.pipeline  # noqa: F401
    import s2d.stages.broad  # noqa: F401
    import s2d.stages.train  # noqa: F401
    import s2d.training  # noqa: F401


def _preload_keeping_folders() -> list:
    """`preload()`, after which the folders the imports made are the server's: W&B's media folder (a
    TemporaryDirectory whose cleanup W&B registers with atexit at import) must not be deleted by one child's exit
    under the next child, as a fresh interpreter's exit deletes only its own. Returns those cleanups, for the
    server's own exit."""
    registered, register = [], atexit.register
    atexit.register = lambda func, *a, **kw: registered.append(func) or register(func, *a, **kw)
    try:
        preload()
    finally:
        atexit.register = register
    folders = [f for f in registered if getattr(f, "__qualname__", "") == "TemporaryDirectory.cleanup"]
    for cleanup in folders:
        atexit.unregister(cleanup)
    for finalizer in list(weakref.finalize._registry):   # the same folders' finalizers, run at exit otherwise
        finalizer.atexit = False
    return folders


def _become(request: dict, fds: list[int], lifeline: socket.socket, client: str):
    """In the forked child: take the caller's descriptors, environment and folder, run its argv, exit."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for name in ("SIGCHLD", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, HIGH_FD) for fd in fds]
    line = fcntl.fcntl(lifeline.fileno(), fcntl.F_DUPFD, HIGH_FD + len(fds) + 1)
    for fd in os.listdir("/proc/self/fd"):   # nothing of the server's survives but the lifeline
        fd = int(fd)
        if fd not in parked and fd != line:
            try:
                os.close(fd)
            except OSError:
                pass
    for target, fd in zip(request["fds"], parked):   # the caller's numbers, which the program expects
        os.dup2(fd, target)
        os.close(fd)
    threading.Thread(target=_watch, args=(line,), daemon=True).start()
    os.chdir(request["cwd"])
    os.sched_setaffinity(0, request["cpus"])   # the caller's cores (a pytest-xdist worker's share, tests/conftest.py)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.executable = client
    if os.environ.get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(line_buffering=True, write_through=True)
    code = 1
    try:
        code = _run(request["argv"][1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else _report(e.code))
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            threading._shutdown()   # what the interpreter does at exit: join non-daemon threads, then atexit
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _report(message) -> int:
    print(message, file=sys.stderr)
    return 1


def _watch(fd: int) -> None:
    """The client died (SIGKILL cannot be forwarded): take this process group down with it, as its own death would."""
    while os.read(fd, 64):
        pass
    os.killpg(0, signal.SIGKILL)


def _run(args: list[str]) -> int:
    """`python ARGS` for the forms the tests' processes use: [-u | -X opt | -W opt ...] (-m MODULE | -c CODE | SCRIPT),
    in a fresh `__main__` module (this server's own must not be overwritten by the program's globals)."""
    sys.modules["__main__"] = types.ModuleType("__main__")
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
        flag = args.pop(0)
        if flag in ("-X", "-W"):
            args.pop(0)
        elif flag == "-u":
            sys.stdout.reconfigure(line_buffering=True, write_through=True)
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        sys.path[0] = os.getcwd()
        with warnings.catch_warnings():   # runpy: "found in sys.modules": preloaded here, fresh in a real python
            warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)
            runpy._run_module_as_main(args[1], alter_argv=True)
    elif args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        sys.path[0] = ""
        exec(compile(args[1], "<string>", "exec"), sys.modules["__main__"].__dict__)
    else:
        sys.argv = list(args)
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
    return 0


def serve(socket_path: str, client: str) -> None:
    start = time.perf_counter()
    with warnings.catch_warnings():   # the imports' deprecation notes would only fill the server's log
        warnings.simplefilter("ignore")
        folders = _preload_keeping_folders()
    gc.collect()
    gc.freeze()   # the preloaded objects stay out of the children's collections (fewer pages copied on write)
    atomic_write_text(client, client_source(socket_path))
    os.chmod(client, 0o755)   # before the socket appears, which is what callers wait for
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path + ".tmp")
    listener.listen(64)
    os.replace(socket_path + ".tmp", socket_path)   # appears only once it accepts
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    print(f"[forkserver] ready in {time.perf_counter() - start:.1f}s on {socket_path} "
          f"({threading.active_count()} thread(s))", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _loop(listener, wake_r, client)
    finally:
        for cleanup in folders:
            cleanup()


def _loop(listener: socket.socket, wake_r: int, client: str) -> None:
    waiting: dict[int, socket.socket] = {}
    while True:
        ready, _, _ = select.select([listener, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(waiting)
        if listener in ready:
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 4096)
            request = json.loads(message)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in waiting.values():
                    other.close()
                _become(request, fds, conn, client)
            for fd in fds:
                os.close(fd)
            conn.send(str(pid).encode())
            waiting[pid] = conn
            _reap(waiting)


def _reap(waiting: dict[int, socket.socket]) -> None:
    while waiting:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            try:
                conn.send(str(os.waitstatus_to_exitcode(status)).encode())
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
