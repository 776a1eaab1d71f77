"""The package's dependency rules (issue 12): plugins never reach into the pipeline, and prompt-only code never
needs torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s2d"
PLUGIN_DIRS = ("curation", "tasks", "techniques")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too); `from s2d import pipeline`
    counts as s2d.pipeline, a relative import by its absolute name."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: from .x import y / from .. import z
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("folder", [*PLUGIN_DIRS, "backends"])
def test_plugins_and_backends_never_import_a_stage_or_the_pipeline(folder):
    for path in modules_under(folder):
        bad = {m for m in imported_modules(path) if m.startswith(("s2d.stages", "s2d.pipeline"))}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


def test_stages_reach_backends_only_through_their_public_modules():
    """A stage uses `s2d.backends` (make_generator, in_process_vllm_env) and `s2d.backends.base`, never one
    backend's implementation module; only s2d/backends/ imports the vllm library itself."""
    implementations = {f"s2d.backends.{p.stem}" for p in modules_under("backends")} - \
        {"s2d.backends.__init__", "s2d.backends.base"}
    for path in modules_under("stages"):
        bad = {m for m in imported_modules(path) if any(m == i or m.startswith(i + ".") for i in implementations)}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "backends":
            continue
        bad = {m for m in imported_modules(path) if m == "vllm" or m.startswith("vllm.")}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


def test_techniques_and_the_backend_base_load_without_torch():
    code = ("import sys, s2d.backends.base, s2d.registry as r; r._import_all('technique'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_second_definition_under_a_registered_name_is_an_error():
    from s2d.registry import REGISTRIES, register

    class First:
        pass

    class Second:
        pass

    register("filter", "__twice__")(First)
    try:
        register("filter", "__twice__")(First)          # the same definition again: fine
        with pytest.raises(ValueError, match="registered twice"):
            register("filter", "__twice__")(Second)
    finally:
        REGISTRIES["filter"].pop("__twice__")
