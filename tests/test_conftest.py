"""The suite's own scheduling (tests/conftest.py): each pytest-xdist worker's share of the cores, and the order in
which the workers pick tests."""
from types import SimpleNamespace

from tests.conftest import LONGEST_FIRST, start_order, worker_cores


def test_workers_split_the_cores_evenly_and_never_share_one_unless_outnumbered():
    assert [worker_cores(f"gw{k}", 2, {0, 1}) for k in range(2)] == [{0}, {1}]
    assert [worker_cores(f"gw{k}", 2, set(range(5))) for k in range(2)] == [{0, 1, 2}, {3, 4}]
    assert [worker_cores(f"gw{k}", 3, {4, 6, 9, 11}) for k in range(3)] == [{4, 6}, {9}, {11}]
    assert [worker_cores(f"gw{k}", 3, {0, 1}) for k in range(3)] == [{0}, {1}, {0}]   # more workers than cores


def _item(nodeid, integration=True):
    return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: object() if integration else None)


def test_the_longest_tests_start_first_and_unit_tests_last():
    unit = _item("tests/test_cache.py::test_x", integration=False)
    other = _item("tests/integration/test_broad.py::test_x")
    longest = _item(LONGEST_FIRST[0] + "_saves_its_artefact")
    second = _item(LONGEST_FIRST[1])
    assert sorted([unit, other, second, longest], key=start_order) == [longest, second, other, unit]
