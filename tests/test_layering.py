"""The house's import arrows point one way: leaves -> components -> index -> api -> front ends.

Every top-level module or package of ``tpd_qa`` has a layer below; a module may import
from lower layers (and, for leaves and components, from its own layer), never from a
higher one, and never from the package root. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tpd_qa"

LAYERS: dict[str, int] = {
    # leaves: plain values, rules and errors
    "records": 0,
    "errors": 0,
    "version": 0,
    "modes": 0,
    "limits": 0,
    "query": 0,
    "text": 0,
    # components: one concern each
    "ingest": 1,
    "chunking": 1,
    "embedding": 1,
    "precision": 1,
    "onnx_model": 1,
    "dense": 1,
    "sparse": 1,
    "fusion": 1,
    "uploads": 1,
    "export": 1,
    "pages": 1,
    "evidence": 1,
    "reranking": 1,
    "sentences": 1,
    # the index composes the components
    "index": 2,
    # the API (and what is built on it like the API: evaluation, the watcher)
    "api": 3,
    "evaluation": 3,
    "distributed": 3,
    # keeping the index current as the corpus changes (on the API)
    "watch": 4,
    # front ends; the command line also launches the web server
    "web": 5,
    "cli": 6,
    "__main__": 7,
}
#: Layers whose members may import each other (leaves use leaves; uploads uses ingest).
SHARED_LAYERS = {0, 1}
#: Modules that must not import anything from tpd_qa at all.
PURE = {"records", "errors", "version", "limits"}


def _top(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported tpd_qa top-level name) of every tpd_qa import in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] == "tpd_qa":
                found.append((node.lineno, parts[1] if len(parts) > 1 else ""))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tpd_qa":
                    found.append((node.lineno, parts[1] if len(parts) > 1 else ""))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def test_every_module_has_a_layer() -> None:
    unknown = sorted({_top(p) for p in MODULES} - set(LAYERS))
    assert not unknown, f"give these modules a layer in tests/test_layering.py: {unknown}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    top = _top(path)
    layer = LAYERS[top]
    for line, target in _imports(path):
        where = f"{path.relative_to(SRC)}:{line}"
        assert target, f"{where} imports the package root; import the defining module"
        if target == top:
            continue
        assert target in LAYERS, f"{where} imports unknown module {target}"
        assert top not in PURE, f"{where}: {top} must not import from tpd_qa"
        allowed = LAYERS[target] < layer or (LAYERS[target] == layer and layer in SHARED_LAYERS)
        assert allowed, f"{where}: {top} (layer {layer}) imports {target} (layer {LAYERS[target]})"


def test_only_web_imports_gradio() -> None:
    offenders = []
    for path in MODULES:
        if _top(path) == "web":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] in ("gradio", "gradio_client") for name in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, offenders


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, long
