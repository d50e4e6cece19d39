"""The package layout (issue: packages depend one way): no import cycle between hwsim's packages, no private
name (a ``_module`` or ``_name``) imported from another package, and ``hwsim.numerics`` a leaf."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "hwsim"


def _imports() -> list[tuple[str, str, list[str], str]]:
    """(importing package, imported module, names, file) for every ``from hwsim... import`` in the package;
    a package is ``hwsim.<first part>`` (top-level modules such as ``hwsim._pipeline`` are their own)."""
    out = []
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        mod = parts[:-1] if is_init else parts
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = mod if is_init else mod[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").startswith("hwsim"):
                target = node.module.split(".")
            else:
                continue
            out.append((".".join(mod[:2]), ".".join(target), [a.name for a in node.names], str(f)))
    return out


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for src, target, _, _ in _imports():
        dst = _package(target)
        # hwsim.errors and hwsim._lazy (the packages' lazy names) import only the standard library: leaves
        if dst not in (src, "hwsim", "hwsim.errors", "hwsim._lazy"):
            graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    # the shared numerics sit below quant, datapath and onnxq
    assert graph.get("hwsim.numerics", set()) == set()
    assert "hwsim.quant" not in graph.get("hwsim.datapath", set())


def test_no_private_name_imported_across_packages():
    bad = []
    for src, target, names, f in _imports():
        if _package(target) in (src, "hwsim") and not target.startswith("hwsim._"):
            continue
        if _package(target) == src:
            continue
        private_module = any(p.startswith("_") for p in target.split(".")[2:])
        private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private_module or private_names:
            bad.append(f"{f}: from {target} import {', '.join(names)}")
    assert bad == []
