"""Profile with pyinstrument: (a) `call_service` in-process on the 100- and 1000-resource patients and
(b) the whole ASGI app (routing, CORS, body reading, JSON checks, audit, response) driven in-process
without sockets on the 100-resource patient. Reports the functions with the most self time and the most
inclusive time (each function counted once per stack)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import defaultdict
from typing import Any

import orjson
from inprocess import Harness
from patients import Patient, request_body

TOP = 12


def _walk(frame: Any, ancestors: frozenset, self_time: dict, inclusive: dict) -> None:
    key = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
    if frame.function and not frame.function.startswith("["):
        self_time[key] += frame.total_self_time
        if key not in ancestors:
            inclusive[key] += frame.time
            ancestors = ancestors | {key}
    for child in frame.children:
        _walk(child, ancestors, self_time, inclusive)


def _tops(session: Any) -> dict[str, Any]:
    root = session.root_frame()
    self_time: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    _walk(root, frozenset(), self_time, inclusive)
    total = root.time or 1.0

    def top(table: dict[str, float], own_code_only: bool = False) -> list[dict[str, Any]]:
        rows = [
            kv
            for kv in table.items()
            if not own_code_only or "cds_service/" in kv[0] or "starlette/" in kv[0] or "logging/" in kv[0]
        ]
        rows = [kv for kv in rows if not own_code_only or kv[1] < 0.97 * total]  # drop the wrappers
        ranked = sorted(rows, key=lambda kv: -kv[1])[:TOP]
        return [{"function": k, "seconds": v, "pct": v / total * 100} for k, v in ranked]

    return {"total_s": total, "top_self": top(self_time), "top_inclusive": top(inclusive, True)}


def _profile(coroutine_factory: Any, count: int) -> dict[str, Any]:
    from pyinstrument import Profiler

    async def body() -> None:
        for _ in range(count):
            await coroutine_factory()

    profiler = Profiler(interval=0.0002, async_mode="disabled")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(body())  # warm
        profiler.start()
        loop.run_until_complete(body())
        profiler.stop()
    finally:
        loop.close()
    result = _tops(profiler.last_session)
    result["calls"] = count
    return result


async def _asgi_post(app: Any, path: str, raw: bytes, state: dict[str, Any]) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),  # what the lifespan yielded, as a server hands it to each request
    }
    await app(scope, receive, send)
    assert status == 200, status
    return status


def _asgi_profile(patient: Patient, count: int) -> dict[str, Any]:
    from pyinstrument import Profiler

    data = tempfile.mkdtemp(prefix="cds-bench-")
    os.environ.update(
        CDS_AUTH="off",
        CDS_RELOAD="false",
        CDS_LOG_LEVEL="WARNING",
        CDS_DATABASE_URL=f"sqlite+aiosqlite:///{data}/feedback.sqlite3",
    )
    from bench_app import app as make_app

    app = make_app()
    body = request_body(patient, "patient-view")
    raw = orjson.dumps(body)
    path = "/cds-services/postfusion-pain-patient-view"
    profiler = Profiler(interval=0.0002, async_mode="disabled")

    async def main() -> None:
        async with app.router.lifespan_context(app) as state:
            for _ in range(20):
                await _asgi_post(app, path, raw, state)
            profiler.start()
            for _ in range(count):
                await _asgi_post(app, path, raw, state)
            profiler.stop()

    asyncio.run(main())
    result = _tops(profiler.last_session)
    result["calls"] = count
    return result


def run(patients: dict[int, Patient], quick: bool = False) -> dict[str, Any]:
    harness = Harness()
    results: dict[str, Any] = {}
    for size, count in ((100, 150 if quick else 400), (1000, 15 if quick else 40)):
        for call_name in ("patient-view", "select-removal"):
            body = request_body(patients[size], call_name)
            results[f"call_service {body['hook']} {size}"] = _profile(lambda b=body: harness.call(b), count)
    results["asgi app patient-view 100"] = _asgi_profile(patients[100], 150 if quick else 400)
    return results


if __name__ == "__main__":
    import sys

    from patients import patients as build

    for name, result in run(build(), "--quick" in sys.argv).items():
        print(f"== {name}: {result['total_s']:.2f} s over {result['calls']} calls")
        for row in result["top_self"][:8]:
            print(f"  self {row['pct']:5.1f}%  {row['function']}")
        for row in result["top_inclusive"][:12]:
            print(f"  incl {row['pct']:5.1f}%  {row['function']}")
