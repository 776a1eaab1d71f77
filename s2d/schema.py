"""The config's schema: one dataclass per group (per implementation for the plugin groups), checked against the
composed and resolved config before any model loads.

Every key and every value type of the config is declared here or, for a task, technique or filter, beside its code
(`Config` on the registered class, extending `TaskConfig` / `TechniqueConfig` / `FilterConfig`): adding a plugin
still touches one module and one YAML file. A key the schema lacks, a value of the wrong type, a value outside a
field's `choice(...)`, or a key the schema requires that the config lacks, is one line naming the key, the value
and the valid keys or choices. What a type cannot say (a number > 0, a template's fields) each stage checks in its
own `check(cfg)` (s2d/pipeline.py `validate` runs them all, before any model loads).

Why the dataclasses check the YAML files rather than being merged into them through Hydra's defaults lists: a
schema merged into a config adds every optional field it declares (`fields: {}`, `prefill: null`, ...) to every
config that does not set it, and every cache key hashes the resolved task and technique configs: each cached
generation would be recomputed although nothing it depends on changed. Checked this way, a config resolves to
exactly what its YAML files say (`tests/test_keys.py` pins every kind of key).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from s2d.errors import UserError, check_choice


def choice(*options, default=MISSING):
    """A field whose value must be one of `options` (None too where the default is None)."""
    return field(default=default, metadata={"choices": options})


# ---- plugin bases: a registered class's `Config` extends one of these -------------------------------------------
@dataclass
class PluginConfig:
    impl: str = MISSING   # the registry entry that builds it
    name: str = MISSING   # how runs, rows and cache folders name it


@dataclass
class TaskConfig(PluginConfig):
    system1_template: str = MISSING   # the distillation input: System 1's prompt for an item
    target_template: str = MISSING    # the distillation target ({answer}, {output})
    prompts: Dict[str, str] = MISSING   # technique prompts the task words its own way (conf/task/prompts/)
    fields: Optional[Dict[str, str]] = None   # constant template fields added to every item (few-shot exemplars)
    prompt_variants: Optional[Dict[str, Any]] = None   # System 1 prompt variants (Table 7, eval.prompt_variants)


@dataclass
class TechniqueConfig(PluginConfig):
    pass


@dataclass
class FilterConfig(PluginConfig):
    samples_per_input: int = MISSING   # System 2 samples per unlabeled input
    temperature: float = MISSING
    top_p: float = MISSING


# ---- the other groups --------------------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    name: str = MISSING
    path: str = MISSING                # a hub id, a local folder or `embedded:<name>`
    trust_remote_code: bool = False
    gguf_parts: Optional[List[Dict[str, str]]] = None   # embedded models: the packaged GGUF parts


@dataclass
class BackendConfig:
    impl: str = MISSING
    name: str = MISSING
    dtype: str = choice("auto", "bfloat16", "float16", "float32")   # auto: bf16 where the device is fast at it
    batch_size: int = MISSING


@dataclass
class HFBackendConfig(BackendConfig):
    num_threads: Optional[int] = None


@dataclass
class VLLMBackendConfig(BackendConfig):
    enforce_eager: bool = MISSING
    max_model_len: Optional[int] = None
    block_size: Any = MISSING          # auto | a multiple of 32 (checked by the backend)
    lora_mode: str = choice("merge", "request")
    max_lora_rank: int = MISSING
    gpu_memory_utilization: float = MISSING
    tensor_parallel_size: int = MISSING
    cpu_kvcache_gb: float = MISSING
    cpu_threads_bind: Optional[str] = None
    replicas: int = MISSING


@dataclass
class LoraConfig:
    r: int = MISSING
    alpha: int = MISSING
    dropout: float = MISSING
    target_modules: Any = MISSING      # all-linear or a list of module names


@dataclass
class TrainingConfig:
    name: str = MISSING
    method: str = choice("lora", "full")
    learning_rate: float = MISSING
    epochs: int = MISSING
    max_steps: int = MISSING
    save_steps: int = MISSING
    dtype: str = choice("auto", "bfloat16", "float32")   # auto: bf16 mixed precision on a GPU, fp32 on a CPU
    batch_size: int = MISSING
    grad_accum: int = MISSING
    warmup_ratio: float = MISSING
    max_length: int = MISSING
    num_processes: int = MISSING
    accelerate_config: Optional[str] = None
    lora: Optional[LoraConfig] = None  # method=lora only


@dataclass
class LoggerConfig:
    name: str = MISSING                # wandb | none
    project: Optional[str] = None
    entity: Optional[str] = None
    mode: Optional[str] = choice("auto", "online", "offline", "disabled", default=None)
    log_adapter: bool = False
    init_timeout: Optional[float] = None


@dataclass
class BenchmarkDevicesConfig:
    parallelize: bool = False
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    max_model_len: Optional[int] = 4096


@dataclass
class BenchmarksConfig:
    name: str = MISSING
    tasks: List[str] = MISSING
    limit: Optional[int] = None
    limit_overrides: Dict[str, int] = field(default_factory=dict)
    batch_size: Optional[int] = None
    model_type: Optional[str] = choice("hf", "vllm", default=None)   # lm-eval's HFLM (None too) or vLLM
    num_fewshot: Optional[int] = None
    apply_chat_template: bool = False
    held_margin: Optional[float] = None
    bootstrap_iters: Optional[int] = None
    devices: BenchmarkDevicesConfig = field(default_factory=BenchmarkDevicesConfig)


@dataclass
class PathsConfig:
    cache_dir: str = MISSING
    models_dir: str = MISSING


@dataclass
class DataConfig:
    train_size: int = MISSING
    test_size: int = MISSING
    seed: int = MISSING


@dataclass
class TargetConfig:
    template: Optional[str] = None
    pick: str = choice("first", "shortest")   # which agreeing System 2 output becomes the target


@dataclass
class EvalConfig:
    max_new_tokens: int = MISSING
    votes: List[int] = MISSING
    temperature: float = MISSING
    top_p: float = MISSING
    prompt_variants: bool = MISSING
    compute_matched: bool = False


@dataclass
class RootConfig:
    """conf/config.yaml. The group nodes are checked by their own schemas (GROUP_SCHEMAS)."""
    seed: int = MISSING
    name: str = MISSING
    group: Optional[str] = None
    data: DataConfig = MISSING
    target: TargetConfig = MISSING
    ablations: List[str] = MISSING
    rounds: int = MISSING
    tasks: List[Any] = MISSING
    optimized_metric: Optional[str] = None
    eval: EvalConfig = MISSING
    paths: Any = MISSING
    model: Any = MISSING
    backend: Any = MISSING
    task: Any = MISSING
    technique: Any = MISSING
    filter: Any = MISSING
    training: Any = MISSING
    logger: Any = MISSING
    benchmarks: Any = MISSING


BACKENDS = {"hf": HFBackendConfig, "vllm": VLLMBackendConfig}


def schema_of(group: str, node: dict) -> type:
    """The schema of one group's node: a plugin's own `Config` (by its `impl`), else the group's."""
    if group in ("task", "technique", "filter"):
        from s2d.registry import registered

        base = {"task": TaskConfig, "technique": TechniqueConfig, "filter": FilterConfig}[group]
        return getattr(registered(group, node.get("impl")), "Config", base)
    if group == "backend":
        return BACKENDS.get(node.get("impl"), BackendConfig)
    return {"model": ModelConfig, "training": TrainingConfig, "logger": LoggerConfig,
            "benchmarks": BenchmarksConfig, "paths": PathsConfig}[group]


GROUPS = ("paths", "model", "backend", "task", "technique", "filter", "training", "logger", "benchmarks")


def check(cfg: DictConfig) -> None:
    """Every node of the resolved config against its schema; the first problem is one UserError line."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    _check("", RootConfig, resolved)
    for group in GROUPS:
        _check(f"{group}.", schema_of(group, resolved[group]), resolved[group])


def check_group(prefix: str, group: str, node) -> None:
    """One group's node on its own (an ablation's filter config) against its schema."""
    node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    _check(prefix, schema_of(group, node), node)


def _check(prefix: str, schema: type, node: dict) -> None:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
    except ConfigKeyError as e:
        key = f"{prefix}{e.full_key}"
        parent = key.rsplit(".", 1)[0] if "." in key else "<root>"
        raise UserError(f"unknown config key '{key}'; valid keys under '{parent}'"
                        f": {', '.join(_keys_at(schema, str(e.full_key)))}") from None
    except OmegaConfBaseException as e:   # a value of the wrong type
        key = f"{prefix}{e.full_key}"
        raise UserError(f"bad {key}={OmegaConf.select(OmegaConf.create(node), str(e.full_key))!r}: "
                        f"{str(e).splitlines()[0]}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        where = prefix.rstrip(".") or "the root config"
        raise UserError(f"{where} lacks {', '.join(prefix + k for k in missing)} (declared in {schema.__qualname__})")
    _check_choices(prefix, schema, node)


def _check_choices(prefix: str, schema: type, node: dict) -> None:
    """Every `choice(...)` field of the schema, nested dataclasses included, against the node's value."""
    for f in fields(schema):
        value = node.get(f.name) if isinstance(node, dict) else None
        options = f.metadata.get("choices")
        if options and not (value is None and f.default is None):
            check_choice(f"{prefix}{f.name}", value, options)
        sub = _dataclass_type(schema, f.name)
        if sub is not None and isinstance(value, dict):
            _check_choices(f"{prefix}{f.name}.", sub, value)


def _keys_at(schema: type, full_key: str) -> list[str]:
    """The keys of the (nested) schema the bad key sits in: `lora.rank` -> the LoraConfig keys."""
    for part in full_key.split(".")[:-1]:
        sub = _dataclass_type(schema, part)
        if sub is None:
            break
        schema = sub
    return [f.name for f in fields(schema)]


def _dataclass_type(schema: type, name: str) -> type | None:
    hint = typing.get_type_hints(schema).get(name)
    for candidate in (hint, *getattr(hint, "__args__", ())):
        if isinstance(candidate, type) and hasattr(candidate, "__dataclass_fields__"):
            return candidate
    return None
