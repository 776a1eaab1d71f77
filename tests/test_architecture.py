"""The package's dependency rules: plugins never reach into the pipeline, and prompt-only code never
needs torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s2d"
PLUGIN_DIRS = ("filters", "tasks", "techniques")


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
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", [*PLUGIN_DIRS, "backends"])
def test_plugins_and_backends_never_import_a_stage_or_the_pipeline(folder):
    for path in modules_under(folder):
        bad = {m for m in imported_modules(path) if m.startswith(("s2d.stages", "s2d.pipeline"))}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


def test_stages_reach_backends_only_through_their_public_modules():
    """A stage uses `s2d.backends` (make_generator, lm_eval_model) and `s2d.backends.base`, never one
    backend's implementation module; only s2d/backends/ imports the vllm library itself."""
    implementations = {module_name(p) for p in modules_under("backends")} - {"s2d.backends", "s2d.backends.base"}
    for path in modules_under("stages"):
        bad = {m for m in imported_modules(path) if any(m == i or m.startswith(i + ".") for i in implementations)}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "backends" in path.parents:
            continue
        # lm-eval's vLLM model is vLLM too: it and the version patch it needs live in s2d/backends/lm_eval_models.py.
        bad = {m for m in imported_modules(path) if m == "vllm" or m.startswith(("vllm.", "lm_eval.models.vllm"))}
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"
        assert "importlib.metadata.version =" not in path.read_text(), path


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """s2d module -> the s2d modules it imports (at any depth, lazy imports included), from the code."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str | None:   # `s2d.cache.keyed` -> s2d.cache; `s2d` itself names no module's code
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name if name and name != "s2d" else None
    return {name: {o for m in imported_modules(path) if m.startswith("s2d") and (o := owner(m)) not in (None, name)}
            for name, path in modules.items()}


def test_the_package_has_no_import_circle():
    """Strongly connected components of the import graph (Tarjan): every one is a single module."""
    graph, index, low, stack, on_stack, circles = import_graph(), {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    assert len(graph) > 40 and graph["s2d.cli"]      # the graph is really read from the code
    assert not circles, f"import circles: {circles}"


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
