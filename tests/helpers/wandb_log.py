"""Read an offline W&B run back: the .wandb file is a LevelDB-style record log of protobuf `Record`s.

Offline runs write no wandb-summary.json, so tests parse the log to compare the summary with results.json.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

BLOCK = 32768
HEADER = 7   # crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    pos, out, buf = 7, [], b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:            # block trailer: zero padding
            pos += left
            continue
        crc, length, rtype = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        chunk = data[pos:pos + length]
        pos += length
        if rtype in (FULL, FIRST, MIDDLE, LAST) and zlib.crc32(chunk, zlib.crc32(bytes([rtype]))) != crc:
            buf = b""                # a chunk still being written (or torn): not a record yet
            continue
        if rtype == FULL:
            out.append(chunk)
        elif rtype == FIRST:
            buf = chunk
        elif rtype == MIDDLE:
            buf += chunk
        elif rtype == LAST:
            out.append(buf + chunk)
            buf = b""
        elif rtype == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
    return out


def run_log(run_dir: Path) -> Path:
    """The record log of the job's offline W&B run under `run_dir/wandb` (not its training runs: s2d/tracking.py
    JobLog.training_run, ids `<job id>-train-<checkpoint>`)."""
    logs = [p for p in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")) if "-train-" not in p.name]
    assert len(logs) == 1, f"expected one offline job run under {run_dir}, found {logs}"
    return logs[0]


def records(path: Path, kind: str) -> list:
    """The protobuf records of one type (summary, history, config, artifact, ...) in a run log, in order."""
    from wandb.proto import wandb_internal_pb2
    out = []
    for raw in raw_records(path):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == kind:
            out.append(getattr(rec, kind))
    return out


def _items(updates) -> dict:
    return {("/".join(i.nested_key) if i.nested_key else i.key): json.loads(i.value_json) for i in updates}


def offline_summary(run_dir: Path) -> dict:
    """The final summary of the job's offline W&B run under `run_dir/wandb`."""
    summary: dict = {}
    for rec in records(run_log(run_dir), "summary"):
        summary.update(_items(rec.update))
    return summary


def offline_history(run_dir: Path) -> list[dict]:
    """Every `run.log` step of the job's offline W&B run, in order."""
    return history(run_log(run_dir))


def history(path: Path) -> list[dict]:
    return [_items(rec.item) for rec in records(path, "history")]


def training_histories(run_dir: Path) -> dict[str, list[dict]]:
    """Run id -> the logged steps of each training run the job started (one per trained checkpoint)."""
    paths = [p for p in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")) if "-train-" in p.name]
    return {p.stem.removeprefix("run-"): history(p) for p in paths}


def offline_config(run_dir: Path) -> dict:
    """The job run's config as its last config records leave it (top-level keys)."""
    config: dict = {}
    for rec in records(run_log(run_dir), "config"):
        config.update({i.key: json.loads(i.value_json) for i in rec.update})
    return config


def offline_artifacts(run_dir: Path) -> list[str]:
    """Names of the artifacts the job's offline run logged."""
    return [rec.name for rec in records(run_log(run_dir), "artifact")]


def offline_table(run_dir: Path, name: str) -> dict:
    """A table the job logged (`run.log({name: wandb.Table})`): {"columns": [...], "data": [[...], ...]}."""
    files = sorted(run_log(run_dir).parent.glob(f"files/media/table/{name}_*.table.json"))
    assert files, f"no table {name!r} in {run_log(run_dir).parent}"
    return json.loads(files[-1].read_text())
