import json

from omegaconf import OmegaConf

from s2d.cache import JsonlStore, atomic_write_json, cache_key, read_json


def test_cache_key_ignores_dict_order_and_accepts_omegaconf():
    a = cache_key({"x": 1, "y": [1, 2]})
    assert a == cache_key({"y": [1, 2], "x": 1}) == cache_key(OmegaConf.create({"x": 1, "y": [1, 2]}))
    assert a != cache_key({"x": 2, "y": [1, 2]})


def test_cache_key_resolves_interpolations():
    cfg = OmegaConf.create({"n": 2, "t": "separate these ${n} words"})
    assert cache_key(cfg) == cache_key({"n": 2, "t": "separate these 2 words"})


def test_jsonl_store_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    store = JsonlStore(path)
    store.append([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    with open(path, "a") as f:
        f.write('{"id": "c", "v"')          # a run killed mid-write
    records = JsonlStore(path).load()
    assert sorted(records) == ["a", "b"]
    assert path.read_text().endswith("\n")


def test_atomic_write_json_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "out.json", {"a": 1})
    assert read_json(tmp_path / "out.json") == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert json.loads((tmp_path / "out.json").read_text())["a"] == 1


def test_a_folder_is_published_whole_replacing_a_half_one_and_keeping_a_complete_one(tmp_path):
    from s2d.cache import publish_folder

    def staged(name, marker=True):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "weights").write_text(name)
        if marker:
            (folder / "done.json").write_text("{}")
        return folder
    target = tmp_path / "model"
    half = staged("model", marker=False)                 # what a killed writer of an older version left
    publish_folder(staged("first"), target, "done.json")
    assert (target / "weights").read_text() == "first" and not (tmp_path / "first").exists() and half == target
    publish_folder(staged("second"), target, "done.json")  # another process won the race: its folder stays
    assert (target / "weights").read_text() == "first"
