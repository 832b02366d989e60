"""``src/`` uses other packages through their public names only: no import of
an underscore name or module, no underscore attribute of an imported module
or object, no ``getattr`` of an underscore name, and no subclass of a class
imported from a library's implementation modules (a protocol, a parser)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ecash"

# underscore names the standard library documents as public
DOCUMENTED = {("os", "_exit"), ("sys", "_getframe")}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def findings(tree: ast.Module) -> list[str]:
    foreign: dict[str, str] = {}  # local name -> the module it came from
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(private(p) for p in alias.name.split(".")):
                    out.append(f"import {alias.name}")
                foreign[(alias.asname or alias.name).split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(private(p) for p in node.module.split(".")):
                out.append(f"from {node.module} import ...")
            for alias in node.names:
                if private(alias.name):
                    out.append(f"from {node.module} import {alias.name}")
                foreign[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and \
                isinstance(node.value, ast.Name) and node.value.id in foreign and \
                (foreign[node.value.id], node.attr) not in DOCUMENTED:
            out.append(f"{node.value.id}.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2 and \
                isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                and private(node.args[1].value):
            out.append(f"{node.func.id}(..., {node.args[1].value!r})")
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                origin = foreign.get(base.id) if isinstance(base, ast.Name) else None
                if origin and any(part in origin.split(".") for part in
                                  ("protocols", "impl", "internal", "internals")):
                    out.append(f"class {node.name}({origin})")
    return out


def test_the_checker_finds_what_it_looks_for() -> None:
    bad = ast.parse(
        "import psycopg\nfrom psycopg.adapt import _Transformer\nfrom x._y import z\n"
        "from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol\n"
        "class P(HttpToolsProtocol): pass\n"
        "n = getattr(pool, '_max_workers', 1)\npsycopg._cmodule\n")
    assert len(findings(bad)) == 5
    good = ast.parse("import os\nos._exit(0)\nclass A:\n    def _f(self): self._g()\n")
    assert findings(good) == []


def test_src_uses_public_names_only() -> None:
    problems = {}
    for path in sorted(SRC.rglob("*.py")):
        found = findings(ast.parse(path.read_text(), str(path)))
        if found:
            problems[str(path.relative_to(SRC))] = found
    assert problems == {}
