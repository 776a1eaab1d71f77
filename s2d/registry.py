"""Registries: tasks, techniques, filters and generation backends are looked up by the `impl` key of their YAML.

Adding one = one module that calls `register(...)` plus one YAML file under conf/<group>/.
"""
from __future__ import annotations

import importlib
import pkgutil

from s2d.errors import check_choice

REGISTRIES: dict[str, dict[str, object]] = {"task": {}, "technique": {}, "filter": {}, "backend": {}}
_PACKAGES = {"task": "s2d.tasks", "technique": "s2d.techniques", "filter": "s2d.filters",
             "backend": "s2d.backends"}


def _origin(obj) -> tuple[str, str]:
    return obj.__module__, obj.__qualname__


def register(kind: str, name: str):
    """Class (or factory) decorator. A second, different entry under the same name is an error, not a silent
    overwrite; the same definition imported twice (a module run as `__main__`, a reload) is not."""
    def wrap(obj):
        existing = REGISTRIES[kind].get(name)
        if existing is not None and _origin(existing) != _origin(obj) and "__main__" not in (
                existing.__module__, obj.__module__):
            raise ValueError(f"{kind} '{name}' is registered twice: {'.'.join(_origin(existing))} and "
                             f"{'.'.join(_origin(obj))}")
        REGISTRIES[kind][name] = obj
        return obj
    return wrap


def _import_all(kind: str) -> None:
    pkg = importlib.import_module(_PACKAGES[kind])
    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def registered(kind: str, impl: str):
    """The class (or factory) registered under `impl`, None if there is none."""
    _import_all(kind)
    return REGISTRIES[kind].get(impl)


def registered_all(kind: str) -> dict[str, object]:
    """Every entry of one kind, by `impl` name."""
    _import_all(kind)
    return dict(REGISTRIES[kind])


def build(kind: str, cfg, /, **kwargs):
    """Instantiate the registered class (or call the factory) named by `cfg.impl` with the config (and kwargs)."""
    _import_all(kind)
    check_choice(f"{kind} implementation (impl)", cfg.impl, REGISTRIES[kind])
    return REGISTRIES[kind][cfg.impl](cfg, **kwargs)
