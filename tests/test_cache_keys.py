"""Cache keys are stable where the inputs are: a refactor that changes a key silently throws away every user's
cached generations (the demo's System 2 pass alone is ~20 minutes on a 2-core CPU). The key below is the one
`make demo` has written since its cache was made; change it only with a change that alters what is generated,
and say so in the commit."""
from pathlib import Path

from hydra import compose, initialize_config_dir

from s2d.cache import cache_key
from s2d.config_tree import CONF_DIR
from s2d.generation import generation_payload
from s2d.pipeline import Context, pool_payload
from s2d.registry import build

# System 2 (S2A, 3 samples) over the demo's unlabeled inputs (of any pool size: records are per item), seed 0, in
# fp32: what `backend.dtype: auto` is on a CPU without AVX512-BF16/AMX (on such a CPU, or a GPU, auto is bf16:
# another model, another key).
DEMO_POOL_KEY = "8fb072756705117d"


def test_the_demos_system2_generations_keep_their_cache_key():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=demo", "backend.dtype=float32"])
    filt = build("filter", cfg.filter)
    model = Context(cfg=cfg, run_dir=Path("unused"), cache_dir=Path("unused")).model_identity   # as a run has it
    payload = pool_payload(cfg, model, build("task", cfg.task), build("technique", cfg.technique))
    key = cache_key(generation_payload(payload, filt.samples_per_input, filt.temperature, filt.top_p))
    assert key == DEMO_POOL_KEY, "the demo's cache key changed: every cached generation would be recomputed"
