"""Content-addressed, atomically written stage outputs.

A stage's cache key is the hash of everything its output depends on (model identity, prompts, sampling, data,
the stage's code version). Files are written to a temporary name and renamed, so a killed run never leaves a
half-written result; generations are appended item by item to a JSONL file, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from omegaconf import DictConfig, ListConfig, OmegaConf


def plain(obj: Any) -> Any:
    """OmegaConf containers -> plain Python, resolved."""
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    return obj


def cache_key(payload: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able payload (OmegaConf allowed); dict key order does not matter."""
    text = json.dumps(plain(payload), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def keyed(cache_dir: str | os.PathLike, payload: dict) -> str:
    """`cache_key(payload)`, with the payload recorded once under `<cache_dir>/index/<key>.json`, so that
    `s2d-cache list` can say what each cache entry was made from."""
    key = cache_key(payload)
    index = Path(cache_dir) / "index" / f"{key}.json"
    if not index.exists():
        atomic_write_json(index, payload)
    return key


def recorded_generations(cache_dir: str | os.PathLike, label: str) -> Iterable[tuple[dict, Path]]:
    """(key payload, records.jsonl path) of every cached generation entry named `label` (`eval-system2`, ...)
    whose payload `keyed` recorded: for analyses that pick entries by what they were made from."""
    cache = Path(cache_dir)
    for folder in sorted((cache / "generations").glob(f"{label}-*")):
        index = cache / "index" / f"{folder.name.rsplit('-', 1)[1]}.json"
        if index.exists() and (folder / "records.jsonl").exists():
            yield json.loads(index.read_text()), folder / "records.jsonl"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp creates 0600; results are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def publish_folder(staging: str | os.PathLike, target: str | os.PathLike, done: str) -> None:
    """Move a finished folder into place in one rename: the folder appears complete (holding its `done` file) or
    not at all. A half folder an older or killed writer left at `target` (no `done` file) is replaced; a complete
    one another process published first is kept."""
    import shutil
    staging, target = Path(staging), Path(target)
    if target.exists() and not (target / done).exists():
        shutil.rmtree(target)
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / done).exists():
            raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(plain(obj), indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Exclusive claim on a cache entry across processes (parallel sweep jobs): the second job waits for the
    first to finish the entry, then finds it in the cache instead of computing it again."""
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def once(entry: str | os.PathLike, done: str | os.PathLike, compute: Callable[[], None]) -> bool:
    """The key -> cached? -> compute -> write phase of every stage whose output is whole (a distillation set, a
    checkpoint, a model's benchmark scores): under the entry's lock, so that a sibling job of a parallel sweep waits
    and then finds the entry, `compute()` (which writes it atomically) unless `done` exists. Returns whether it
    was cached. Generations are resumable per item instead (s2d/generation.py)."""
    with locked(entry):
        if Path(done).exists():
            return True
        compute()
        return False


def cached_json(path: str | os.PathLike, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """(the JSON at `path`, True), or (`compute()`, False) after writing it there atomically (`once`)."""
    made = []

    def make() -> None:
        made.append(compute())
        atomic_write_json(path, made[0])

    cached = once(path, path, make)
    return (read_json(path) if cached else made[0]), cached


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


class JsonlStore:
    """Append-only JSON-lines file of records keyed by `key_field`; tolerant of a torn last line and of damaged
    records anywhere (a disk error, a copy cut short): those are dropped, so their items are generated again."""

    def __init__(self, path: str | os.PathLike, key_field: str = "id"):
        self.path = Path(path)
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        # A run killed mid-write can leave a partial last line: cut the file back to the last complete record.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def load(self) -> dict[str, dict]:
        """Every intact record. Damaged lines are reported in one line naming the file and removed from it
        (atomically), so the caller regenerates exactly those records and the warning is not repeated."""
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        lines = self.path.read_text(errors="replace").splitlines()
        kept, damaged = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records[rec[self.key_field]] = rec
                kept.append(line)
            except (ValueError, KeyError, TypeError):
                damaged.append(number)
        if damaged:
            shown = ", ".join(map(str, damaged[:5])) + (", ..." if len(damaged) > 5 else "")
            print(f"[s2d] WARNING: {self.path}: {len(damaged)} damaged record(s) dropped (line {shown}); "
                  "they are generated again", flush=True)
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        return records

    def append(self, records: Iterable[dict]) -> None:
        with open(self.path, "a") as f:
            for rec in records:
                f.write(json.dumps(rec, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
