"""Registries: tasks, techniques and filters are looked up by the `impl` key of their YAML config.

Adding one = one module that calls `register(...)` plus one YAML file under conf/<group>/.
"""
from __future__ import annotations

import importlib
import pkgutil

from s2d.errors import check_choice

REGISTRIES: dict[str, dict[str, type]] = {"task": {}, "technique": {}, "filter": {}}
_PACKAGES = {"task": "s2d.tasks", "technique": "s2d.techniques", "filter": "s2d.curation"}


def register(kind: str, name: str):
    def wrap(cls):
        REGISTRIES[kind][name] = cls
        cls.registry_name = name
        return cls
    return wrap


def _import_all(kind: str) -> None:
    pkg = importlib.import_module(_PACKAGES[kind])
    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def build(kind: str, cfg, **kwargs):
    """Instantiate the registered class named by `cfg.impl` with the config (and extra arguments)."""
    _import_all(kind)
    check_choice(f"{kind} implementation (impl)", cfg.impl, REGISTRIES[kind])
    return REGISTRIES[kind][cfg.impl](cfg, **kwargs)
