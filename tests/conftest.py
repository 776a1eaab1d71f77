"""The whole suite: pytest-xdist workers each get their own share of the cores, and the slow tests start first.

`make test` runs two workers (TEST_WORKERS). Each is confined to its share of the machine's cores, with as many
OpenMP threads, before anything imports torch: the runs a worker starts then see a smaller machine (vLLM binds
its engine to the worker's cores, training uses as many threads), instead of two workers' four threads fighting
over two cores. On the 2-core AMD EPYC, test_paper_parts + test_pipeline took 507 s on one process and 400 s on
two one-core workers: a tiny run spends much of its time in single-threaded Python (vLLM's scheduler, tokenising,
Hydra, process start), which the second core now overlaps with the other worker's.
"""
import os
import sys

from s2d.backends.vllm.cpu import split_evenly  # torch-free at import: safe before the cores are set

# Every core this session may use, before a worker narrows itself to its share: for the test that needs the
# whole machine (two vLLM replicas, one per core).
ALL_CORES = frozenset(os.sched_getaffinity(0))


def worker_cores(worker: str, workers: int, cores=ALL_CORES) -> set[int]:
    """pytest-xdist worker `gwK`'s share of `cores`: an even split (the first shares one larger when they do not
    divide), every worker at least one core (more workers than cores share them round-robin)."""
    cores, k = sorted(cores), int(worker.removeprefix("gw"))
    if workers >= len(cores):
        return {cores[k % len(cores)]}
    return set(split_evenly(cores, workers)[k])   # as vLLM replicas split a machine's cores


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    cores = worker_cores(worker, int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.sched_setaffinity(0, cores)
    os.environ["OMP_NUM_THREADS"] = str(len(cores))   # libgomp reads it when torch loads: before any import of it
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(len(cores))


# The longest tests (clean-clone `make test` durations, AMD EPYC, 3e0b009), started first in this order.
LONGEST_FIRST = (
    "tests/integration/test_vllm.py::test_compiled_engine",
    "tests/integration/test_experiments.py::test_experiment_runs_tiny_and_reruns_fully_cached[demo]",
    "tests/integration/test_vllm.py::test_same_seed",
    "tests/integration/test_paper_parts.py::test_bsm_with_perturbation_on_mtbench_judge[sum]",
    "tests/integration/test_loops.py::test_two_rounds",
    "tests/integration/test_resume.py",
    "tests/integration/test_experiments.py::test_experiment_runs_tiny_and_reruns_fully_cached[multitask]",
)


def start_order(item) -> tuple[int, int]:
    """The longest tests, then the other integration tests, then the few-second unit tests: the workers pick tests
    in this order, so the unit tests fill the end of the session instead of one worker idling beside a long test.
    (`--dist loadgroup` hands out a group of tests, such as test_sweep.py's one sweep, before single tests.)"""
    rank = next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))
    return item.get_closest_marker("integration") is None, rank


def pytest_collection_modifyitems(config, items):
    items.sort(key=start_order)
