"""Trace one CDS Hooks call through the package: which modules it enters, and where it climbs back up.

    .venv/bin/python scripts/request_path.py [REQUEST.json]

Runs the request in-process through the ASGI app (JWT verification off, Starlette's test client), records
every call from one of the package's modules into another with a profile hook, and ranks each module by the
layers of the import-linter contract in pyproject.toml (first layer = highest). It prints the modules in the
order the call first enters them, the folders in that order, the distinct module-to-module call edges, the
edges that go *up* a layer (a lower layer calling code of a higher one: callbacks), and the import statements
that do (statically, with grimp).
"""

from __future__ import annotations

import sys
import threading
import tomllib
from pathlib import Path
from types import FrameType
from typing import Any

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cds_service"


def layer_ranks() -> list[tuple[str, int]]:
    """(module prefix, rank) from the layers contract; a higher rank is a higher layer."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    ranks = []
    for position, layer in enumerate(layers):
        for name in layer.replace(":", "|").split("|"):
            ranks.append((f"{PACKAGE}.{name.strip()}", len(layers) - position))
    return sorted(ranks, key=lambda item: -len(item[0]))


def rank_of(module: str, ranks: list[tuple[str, int]]) -> int | None:
    for prefix, rank in ranks:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def one_call(body: bytes) -> list[tuple[str, str]]:
    """Every (caller module, callee module) pair of one service call, in order of first occurrence."""
    import os

    os.environ.update(CDS_AUTH="off", CDS_RELOAD="false", CDS_DATABASE_URL="sqlite+aiosqlite:///:memory:")
    from starlette.testclient import TestClient

    from cds_service.web.app import create_app

    edges: dict[tuple[str, str], None] = {}
    tracing = threading.Event()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_back is None or not tracing.is_set():
            return
        callee = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "")
        if callee.startswith(PACKAGE) and caller.startswith(PACKAGE) and callee != caller:
            edges.setdefault((caller, callee), None)

    threading.setprofile(profile)  # the test client runs the app in a thread of its own
    url = "/cds-services/postfusion-pain-order-sign"
    headers = {"Content-Type": "application/json"}
    with TestClient(create_app()) as client:
        client.post(url, content=body, headers=headers)  # warm: first-call imports and compilation
        tracing.set()
        response = client.post(url, content=body, headers=headers)
        tracing.clear()
    threading.setprofile(None)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return list(edges)


def main() -> None:
    request = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fixtures" / "hooks" / "order-sign.json"
    ranks = layer_ranks()
    edges = one_call(request.read_bytes())
    modules = list(dict.fromkeys(module for edge in edges for module in edge))
    up = [(a, b) for a, b in edges if (rank_of(b, ranks) or 0) > (rank_of(a, ranks) or 0)]
    graph = grimp.build_graph(PACKAGE)
    static_up = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if importer != f"{PACKAGE}.__main__"  # the entry point, above every layer
        and (rank_of(imported, ranks) or 0) > (rank_of(importer, ranks) or 0)
    )
    print(f"modules entered: {len(modules)}")
    for module in modules:
        print(f"  {module} (layer {rank_of(module, ranks)})")
    folders = list(dict.fromkeys(module.split(".")[1] for module in modules))
    print(f"folders, in the order the call first enters them: {' -> '.join(folders)}")
    print(f"module-to-module call edges: {len(edges)}")
    print(f"calls up a layer: {len(up)}")
    for caller, callee in up:
        print(f"  {caller} -> {callee}")
    print(f"imports up a layer: {len(static_up)}")
    for importer, imported in static_up:
        print(f"  {importer} imports {imported}")


if __name__ == "__main__":
    main()
