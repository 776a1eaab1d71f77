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


def offline_summary(run_dir: Path) -> dict:
    """The final summary of the single offline W&B run under `run_dir/wandb`."""
    from wandb.proto import wandb_internal_pb2

    logs = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 1, f"expected one offline run under {run_dir}, found {logs}"
    summary: dict = {}
    for raw in raw_records(logs[0]):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "summary":
            for item in rec.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                summary[key] = json.loads(item.value_json)
    return summary
