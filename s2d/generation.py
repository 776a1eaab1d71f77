"""Run a technique over items with a resumable, content-addressed JSONL cache.

Records are keyed `<item id>#<sample>`. Items are processed in chunks of `backend.batch_size` inputs and each
chunk is appended as soon as it is done, so a killed run loses at most one chunk and a rerun generates only what
is missing (down to one item-sample where a damaged record was dropped). Chunk boundaries (and so sampling seeds)
do not move on resume, so a resumed run gives the same records.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from s2d import keys
from s2d.cache import JsonlStore, keyed, locked


@dataclass
class GenerationResult:
    records: dict[str, list[dict]]   # item id -> one trace per sample
    key: str
    path: Path
    generated: int                   # item-samples generated now (0 when fully cached)
    cached: int                      # item-samples read from the cache


@dataclass
class GenerationService:
    """What stages and plugins (tasks, filters) get to run techniques through the model, instead of the pipeline's
    Context: where generations are cached, how they are seeded and chunked, and which model makes them."""
    cache_dir: Path
    seed: int                             # sampling seed of the run
    batch_size: int                       # inputs per cached chunk (`backend.batch_size`)
    model_identity: dict                  # what makes generations of this model reproducible (part of every key)
    generator: Callable[[], object]       # the base-model generator, loaded on first use

    def run(self, label: str, technique, items, n_samples: int, temperature: float, top_p: float,
            key_payload: dict, gen_factory=None) -> GenerationResult:
        return run_technique_cached(self, label, technique, items, n_samples, temperature, top_p, key_payload,
                                    gen_factory)


def run_technique_cached(service: GenerationService, label: str, technique, items, n_samples: int,
                         temperature: float, top_p: float, key_payload: dict, gen_factory=None) -> GenerationResult:
    key = keyed(service.cache_dir, keys.generations(key_payload, n_samples, temperature, top_p))
    path = Path(service.cache_dir) / "generations" / f"{label}-{key}" / "records.jsonl"
    with locked(path):   # sibling jobs of a parallel sweep wait here, then read what this one generated
        return _run_locked(service, label, technique, items, n_samples, temperature, top_p, key, path, gen_factory)


def _is_done(done: dict, item, s: int, digest: str) -> bool:
    """A cached record counts only if it was made from this very input: an item id can name a different input
    when a task's split depends on the sizes (MT-bench pairs, TriviaQA bias groups). Records written before
    inputs were hashed carry no hash and are accepted (their tasks were prefix-stable)."""
    rec = done.get(f"{item.id}#{s}")
    return rec is not None and rec.get("input_hash", digest) == digest


def _run_locked(service, label, technique, items, n_samples, temperature, top_p, key, path, gen_factory):
    store = JsonlStore(path)
    done = store.load()
    wanted = [(item, s) for item in items for s in range(n_samples)]
    digests = {item.id: keys.input_digest(item) for item in items}
    # Item-samples to generate: all of an item's samples on a fresh or resumed run; only the lost ones where a
    # damaged record was dropped.
    missing = {item.id: [s for s in range(n_samples) if not _is_done(done, item, s, digests[item.id])]
               for item in items}
    missing_items = [item for item in items if missing[item.id]]
    generated = 0
    if missing_items:
        gen = (gen_factory or service.generator)()
        chunk = max(1, int(service.batch_size) // n_samples)
        bar = tqdm(total=len(missing_items), desc=f"{label}: {technique.name}", unit="input")
        for start in range(0, len(missing_items), chunk):
            part = missing_items[start:start + chunk]
            expanded = [(item, s) for item in part for s in missing[item.id]]
            # Seed from the chunk's first item id: the same chunk gets the same samples on a resumed run.
            seed = int(service.seed) * 1_000_003 + zlib.crc32(part[0].id.encode())
            traces = technique.run(gen, [item.inputs() for item, _ in expanded], temperature, top_p, seed)
            store.append({"id": f"{item.id}#{s}", "item": item.id, "sample": s, "input_hash": digests[item.id], **trace}
                         for (item, s), trace in zip(expanded, traces))
            generated += len(expanded)
            bar.update(len(part))
        bar.close()
        done = store.load()
    records = {item.id: [done[f"{item.id}#{s}"] for s in range(n_samples)] for item in items}
    return GenerationResult(records, key, path, generated, len(wanted) - generated)
