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
    """Every module a file imports, at any depth (function-level imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("folder", PLUGIN_DIRS)
def test_plugins_never_import_a_stage_or_the_pipeline(folder):
    for path in sorted((PACKAGE / folder).glob("*.py")):
        bad = {m for m in imported_modules(path) if m.startswith(("s2d.stages", "s2d.pipeline"))}
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
