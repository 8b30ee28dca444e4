"""A real loopback FHIR server (Starlette + uvicorn in a thread) and a trap listener for the fetch tests.

The FHIR app serves R4 reads and paged searchsets plus every failure mode the fetcher must handle, and
records each request. The trap listener only counts TCP connections: it proves that refused URLs are
never contacted at all.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

FHIR_JSON = "application/fhir+json"

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1960-04-02",
}

_CONDITION_CODES = [
    ("279039007", "Low back pain"),
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("69896004", "Rheumatoid arthritis"),
    ("195967001", "Asthma"),
]

CONDITIONS = [
    {
        "resourceType": "Condition",
        "id": f"c{i}",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": f"202{i}-01-15",
    }
    for i, (code, display) in enumerate(_CONDITION_CODES)
]


def _outcome(code: str, text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _fhir(body: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _searchset(
    request: Request, entries: list[dict], next_url: str | None, total: int | None
) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    bundle: dict = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": str(request.url)}],
    }
    if total is not None:
        bundle["total"] = total
    if next_url is not None:
        bundle["link"].append({"relation": "next", "url": next_url})
    if entries:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in entries
        ]
    return _fhir(bundle)


async def patient_read(request: Request) -> Response:
    pid = request.path_params["pid"]
    if pid == "p1":
        return _fhir(PATIENT)
    if pid == "cookie":
        response = _fhir({**PATIENT, "id": "cookie"})
        response.set_cookie("session", "user-a-session")
        return response
    if pid == "gone":
        return _fhir(_outcome("deleted", "gone"), 410)
    return _fhir(_outcome("not-found", "no such patient"), 404)


async def condition_search(request: Request) -> Response:
    """Pages with `_count` and a private `_offset`; `_relative=1` emits a relative next link."""
    params = request.query_params
    matches = CONDITIONS if params.get("patient") == "p1" else []
    count = int(params.get("_count", "100"))
    offset = int(params.get("_offset", "0"))
    next_url = None
    if offset + count < len(matches):
        query = f"patient={params['patient']}&_count={count}&_offset={offset + count}"
        if params.get("_relative") == "1":
            next_url = f"Condition?{query}&_relative=1"
        else:
            next_url = f"{str(request.base_url).rstrip('/')}/fhir/Condition?{query}"
    return _searchset(request, matches[offset : offset + count], next_url, len(matches))


async def endless(request: Request) -> Response:
    """Always one more page; `delay` seconds per page."""
    page = int(request.query_params.get("page", "0"))
    delay = request.query_params.get("delay", "0")
    await asyncio.sleep(float(delay))
    next_url = f"{str(request.base_url).rstrip('/')}/fhir/endless?page={page + 1}&delay={delay}"
    return _searchset(request, [{**PATIENT, "id": f"e{page}"}], next_url, None)


async def loop(request: Request) -> Response:
    return _searchset(request, [PATIENT], str(request.url), 1)


async def bad_next(request: Request) -> Response:
    """Next link at the trap host, or (where=path) on this host but outside the /fhir base."""
    trap_port = request.app.state.trap_port
    if request.query_params.get("where") == "path":
        next_url = f"{str(request.base_url).rstrip('/')}/other/Condition?page=2"
    else:
        next_url = f"http://127.0.0.1:{trap_port}/fhir/Condition?page=2"
    return _searchset(request, [PATIENT], next_url, 2)


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return _fhir(_outcome("exception", "failure"), code)


async def redirect(request: Request) -> Response:
    return RedirectResponse(
        f"http://127.0.0.1:{request.app.state.trap_port}/fhir/Patient/p1", status_code=302
    )


async def outcome(request: Request) -> Response:
    return _fhir(_outcome("processing", "something went wrong"))


async def non_json(request: Request) -> Response:
    return PlainTextResponse("<html>not fhir</html>")


async def not_fhir(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.path_params["seconds"]))
    return _fhir(PATIENT)


async def anything_else(request: Request) -> Response:
    return _fhir(_outcome("not-supported", "unknown"), 404)


@dataclass(frozen=True)
class Seen:
    """One request as the FHIR server saw it."""

    path: str
    query: str
    authorization: str | None
    accept: str | None
    cookie: str | None


class _Recorder:
    """ASGI wrapper that records every HTTP request before the app handles it."""

    def __init__(self, app: Starlette, seen: list[Seen]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.seen.append(
                Seen(
                    scope["path"],
                    scope["query_string"].decode(),
                    headers.get("authorization"),
                    headers.get("accept"),
                    headers.get("cookie"),
                )
            )
        await self.app(scope, receive, send)


def _app(seen: list[Seen], trap_port: int) -> _Recorder:
    app = Starlette(
        routes=[
            Route("/fhir/Patient/{pid}", patient_read),
            Route("/fhir/Condition", condition_search),
            Route("/fhir/endless", endless),
            Route("/fhir/loop", loop),
            Route("/fhir/badnext", bad_next),
            Route("/fhir/status/{code:int}", status),
            Route("/fhir/redirect", redirect),
            Route("/fhir/oo", outcome),
            Route("/fhir/nonjson", non_json),
            Route("/fhir/notfhir", not_fhir),
            Route("/fhir/slow/{seconds}", slow),
            Route("/{path:path}", anything_else),
        ]
    )
    app.state.trap_port = trap_port
    return _Recorder(app, seen)


class Trap:
    """Counts TCP connections on its port; nothing should ever connect."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class Loopback:
    """Handles for tests: bases, the requests seen by the FHIR server and the trap."""

    port: int
    trap: Trap
    seen: list[Seen] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def trap_base(self) -> str:
        return f"http://127.0.0.1:{self.trap.port}/fhir"

    def reset(self) -> None:
        self.seen.clear()
        self.trap.connections = 0


def _wait_until_accepting(port: int, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def running_loopback() -> Iterator[Loopback]:
    """Start both listeners, wait until the FHIR server accepts connections, stop them afterwards."""
    trap = Trap()
    sock = socket.create_server(("127.0.0.1", 0))
    loopback = Loopback(port=sock.getsockname()[1], trap=trap)
    config = uvicorn.Config(
        _app(loopback.seen, trap.port), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_until_accepting(loopback.port)
    try:
        yield loopback
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
        trap.close()
