import json

import pytest

from s2d.cache import JsonlStore, atomic_write_json, keyed
from s2d.cache_cli import main


def _cache(tmp_path):
    cache = tmp_path / "cache"
    key = keyed(cache, {"kind": "generations", "model": {"path": "embedded:m"}, "task": {"name": "addition"},
                        "split": "train", "seed": 0})
    JsonlStore(cache / "generations" / f"train-{key}" / "records.jsonl").append([{"id": "a#0", "output": "1"}])
    atomic_write_json(cache / "distill_sets" / "good.json", {"examples": []})
    (cache / "distill_sets" / "torn.json").write_text('{"examples": [')            # a copy cut short
    (cache / "checkpoints" / ".k1.staging" / "trainer" / "checkpoint-2").mkdir(parents=True)
    (cache / "broad").mkdir()
    (cache / "broad" / ".x.json.123.tmp").write_text("{")                             # a writer killed mid-write
    return cache, key


def test_list_names_kind_status_and_what_each_entry_was_made_from(tmp_path, capsys):
    cache, key = _cache(tmp_path)
    main(["list", "--cache-dir", str(cache)])
    out = capsys.readouterr().out
    assert f"generations  {key}" in out and "m task=addition split=train seed=0" in out
    assert "damaged: JSONDecodeError" in out and "staging" in out and "temp" in out


def test_verify_fails_on_damage_and_prune_removes_only_what_is_broken(tmp_path, capsys):
    cache, _ = _cache(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["verify", "--cache-dir", str(cache)])
    assert e.value.code == 1 and "1 damaged entry" in capsys.readouterr().out
    main(["prune", "--dry-run", "--cache-dir", str(cache)])
    assert (cache / "distill_sets" / "torn.json").exists()
    main(["prune", "--cache-dir", str(cache)])
    assert not (cache / "distill_sets" / "torn.json").exists() and not (cache / "broad" / ".x.json.123.tmp").exists()
    assert (cache / "distill_sets" / "good.json").exists() and (cache / "checkpoints" / ".k1.staging").exists()
    main(["prune", "--staging", "--cache-dir", str(cache)])                           # resume points only on request
    assert not (cache / "checkpoints" / ".k1.staging").exists()
    main(["verify", "--cache-dir", str(cache)])
    assert json.loads((cache / "distill_sets" / "good.json").read_text()) == {"examples": []}


def test_merged_round_models_are_listed_and_a_killed_merge_is_pruned(tmp_path, capsys):
    cache = tmp_path / "cache"
    (cache / "merged" / "k1").mkdir(parents=True)
    (cache / "merged" / "k1" / "config.json").write_text("{}")
    (cache / "merged" / ".k2.abc" / "hf").mkdir(parents=True)                      # a merge killed midway
    main(["list", "--cache-dir", str(cache)])
    out = capsys.readouterr().out
    assert "merged       k1" in out and ".k2.abc" in out
    main(["prune", "--cache-dir", str(cache)])
    assert (cache / "merged" / "k1").exists() and not (cache / "merged" / ".k2.abc").exists()
