"""`s2d-cache list|verify|prune`: what the stage cache holds, whether it is intact, and removing what is not.

    s2d-cache list                      # every entry: kind, key, size, age, status, what it was made from
    s2d-cache verify                    # the same, exit 1 if an entry is damaged
    s2d-cache prune [--dry-run]         # remove damaged entries, half-written temp files and orphan locks
    s2d-cache prune --staging           # also the staging folders of killed trainings (their resume points)

The cache is `$S2D_CACHE_DIR` (default ~/.cache/s2d) or `--cache-dir`. "What it was made from" comes from the
key's payload, recorded in `index/<key>.json` when the entry was made (entries older than that record show "?").
A damaged generation file is also repaired by the next run that reads it (the damaged records are generated
again), so prune is for the other kinds and for space.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from s2d.cache import read_json


@dataclass
class Entry:
    kind: str          # generations | distill_set | checkpoint | broad | model | merged | staging | temp | lock
    path: Path
    key: str
    status: str = "ok"   # ok | damaged: why | in use | stale
    size: int = 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _in_use(lock: Path) -> bool:
    """A running job holds the entry's lock (`s2d.cache.locked`)."""
    if not lock.exists():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False


def _check_jsonl(path: Path) -> str:
    bad = 0
    for line in path.read_text(errors="replace").splitlines():
        if line.strip():
            try:
                json.loads(line)["id"]
            except (ValueError, KeyError, TypeError):
                bad += 1
    return f"damaged: {bad} bad record(s)" if bad else "ok"


def _check_json(path: Path) -> str:
    try:
        read_json(path)
    except (ValueError, OSError) as e:
        return f"damaged: {type(e).__name__}"
    return "ok"


def _check_checkpoint(path: Path) -> str:
    if not (path / "s2d_train.json").exists() or _check_json(path / "s2d_train.json") != "ok":
        return "damaged: no readable s2d_train.json"
    if not list(path.glob("*.safetensors")):
        return "damaged: no weights"
    return "ok"


def scan(cache: Path) -> list[Entry]:
    entries = []
    for folder in sorted((cache / "generations").glob("*")):
        if folder.is_dir():
            records = folder / "records.jsonl"
            if records.exists():
                status = _check_jsonl(records)
            else:   # started, killed before its first chunk: nothing to keep
                status = "in use" if _in_use(folder / "records.jsonl.lock") else "stale: empty"
            entries.append(Entry("generations", folder, folder.name.rsplit("-", 1)[-1], status, _size(folder)))
    for kind, sub in (("distill_set", "distill_sets"), ("broad", "broad")):
        for f in sorted((cache / sub).glob("*.json")):
            entries.append(Entry(kind, f, f.stem, _check_json(f), _size(f)))
    for folder in sorted((cache / "checkpoints").glob("*")):
        if folder.is_dir() and not folder.name.startswith("."):
            entries.append(Entry("checkpoint", folder, folder.name, _check_checkpoint(folder), _size(folder)))
        elif folder.name.endswith(".staging"):
            key = folder.name[1:-len(".staging")]
            in_use = _in_use(cache / "checkpoints" / f"{key}.lock")
            entries.append(Entry("staging", folder, key, "in use" if in_use else "stale", _size(folder)))
    for folder in sorted((cache / "models").glob("*")):
        if folder.is_dir() and not folder.name.startswith("."):
            status = "ok" if (folder / "config.json").exists() else "damaged: no config.json"
            entries.append(Entry("model", folder, "-", status, _size(folder)))
    for folder in sorted((cache / "merged").glob("*")):   # LoRA checkpoints merged (s2d.models.merged_path), by key
        if folder.is_dir() and not folder.name.startswith("."):
            status = "ok" if (folder / "config.json").exists() else "damaged: no config.json"
            entries.append(Entry("merged", folder, folder.name, status, _size(folder)))
        elif folder.is_dir():   # a merge killed midway left its staging folder
            entries.append(Entry("temp", folder, "-", "stale", _size(folder)))
    for tmp in sorted(cache.rglob(".*.tmp")):
        entries.append(Entry("temp", tmp, "-", "stale", _size(tmp)))
    for lock in sorted(cache.rglob("*.lock")):
        owner = Path(str(lock)[:-len(".lock")])
        if lock.parent.parent == cache / "generations":
            continue   # a generation folder's own lock: the folder is the entry
        if not owner.exists() and not _in_use(lock):
            entries.append(Entry("lock", lock, "-", "stale", 0))
    return entries


def describe(cache: Path, key: str) -> str:
    """A one-line summary of what the entry was made from (its recorded key payload)."""
    index = cache / "index" / f"{key}.json"
    if not index.exists():
        return "?"
    p = read_json(index)
    parts = []
    model = p.get("model")
    if isinstance(model, dict):
        parts.append(Path(str(model.get("path", "?"))).name)
    elif model:
        parts.append(Path(str(model)).name)
    for field in ("task", "technique", "filter", "training"):
        value = p.get(field)
        if isinstance(value, dict) and value.get("name"):
            parts.append(f"{field}={value['name']}")
    for field in ("split", "seed", "n_samples", "temperature"):
        if field in p:
            parts.append(f"{field}={p[field]}")
    return " ".join(parts) or p.get("kind", "?")


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_table(cache: Path, entries: list[Entry]) -> None:
    now = time.time()
    print(f"{'kind':12s} {'key':17s} {'size':>9s} {'age':>6s}  {'status':28s} made from")
    for e in entries:
        age = (now - e.path.stat().st_mtime) / 3600
        made = describe(cache, e.key) if e.key != "-" else e.path.name
        print(f"{e.kind:12s} {e.key:17s} {_human(e.size):>9s} {age:5.0f}h  {e.status:28s} {made}")
    total = sum(e.size for e in entries)
    print(f"{len(entries)} entries, {_human(total)} in {cache}")


def removable(e: Entry, staging: bool) -> bool:
    if e.status.startswith(("damaged", "stale: empty")) or e.kind in ("temp", "lock"):
        return True
    return staging and e.kind == "staging" and e.status == "stale"


def main(argv: list[str] | None = None) -> None:
    from s2d.config_tree import default_cache_dir

    ap = argparse.ArgumentParser(prog="s2d-cache", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["list", "verify", "prune"])
    ap.add_argument("--cache-dir", default=None, help="default: $S2D_CACHE_DIR or ~/.cache/s2d")
    ap.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    ap.add_argument("--staging", action="store_true",
                    help="prune: also the staging folders of killed trainings (they are what a rerun resumes from)")
    args = ap.parse_args(argv)
    cache = Path(args.cache_dir or default_cache_dir())
    if not cache.is_dir():
        print(f"s2d-cache: error: no cache at '{cache}'", file=sys.stderr)
        raise SystemExit(2)
    entries = scan(cache)
    if args.command in ("list", "verify"):
        print_table(cache, entries)
        damaged = [e for e in entries if e.status.startswith("damaged")]
        if args.command == "verify" and damaged:
            print(f"{len(damaged)} damaged entr{'y' if len(damaged) == 1 else 'ies'}: `s2d-cache prune` removes "
                  "them (a damaged generation file is also repaired by the next run that reads it)")
            raise SystemExit(1)
        return
    gone = [e for e in entries if removable(e, args.staging)]
    for e in gone:
        print(f"{'would remove' if args.dry_run else 'removed'} {e.kind} {e.path} ({e.status})")
        if not args.dry_run:
            shutil.rmtree(e.path) if e.path.is_dir() else e.path.unlink()
    print(f"{len(gone)} entr{'y' if len(gone) == 1 else 'ies'} {'to remove' if args.dry_run else 'removed'}")


if __name__ == "__main__":
    main()
