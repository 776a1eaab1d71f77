"""Data and model files that ship inside installed PyPI packages (offline by construction): one locator."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from s2d.errors import UserError


def package_dir(package: str, pip_spec: str, what: str, hint: str = "") -> Path:
    """The folder of an installed package, or a one-line UserError saying how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not (spec.submodule_search_locations or spec.origin):
        raise UserError(f"the {what} package is missing; run: .venv/bin/pip install --no-deps {pip_spec}{hint}")
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent
