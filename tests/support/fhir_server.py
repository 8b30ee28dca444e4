"""The suite's one FHIR test server, and the one way every test server runs: uvicorn in a background thread.

- `serving(app, port=None)` runs any ASGI app on 127.0.0.1 for as long as a `with` block lasts and yields
  its base URL; without a port it binds a free one itself, so no other process can take it in between.
- `free_port()` names a port nothing listens on (yet); `ConnectionTrap` listens and only counts the
  connections made to it: proof that a refused URL was never contacted.
- `fhir_app(state)` is a FHIR R4 server over in-memory resources that `FhirState` configures: reads,
  searches by patient and code with paging (`_count`, a private `_offset`, `_relative=1` for a relative next
  link), `/metadata` that can say "starting" (503), transactions POSTed to the base, every failure mode a
  client must handle (`status/{code}`, `oo`, `nonjson`, `notfhir`, `slow/{seconds}`, `endless`, `loop`,
  `badnext`, `redirect`), and switches that make all reads and searches slow, failing or redirected. It
  records every request (path, query, Authorization, Accept, Cookie, X-Request-ID, arrival time) so tests
  can check what was asked and which bearer token came with it.
- `running_fhir_server(state=None, port=None)` puts the two together and yields `(base, state)`, where
  `base` ends in `/fhir`.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

import uvicorn
from fhir.resources.R4B import get_fhir_model_class
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from support.waiting import wait_for

HOST = "127.0.0.1"
FHIR_JSON = "application/fhir+json"

# The resource the synthetic endpoints (slow, endless, loop, badnext) answer with.
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1960-04-02",
}


@cache
def padded_bundle(size: int, encoding: str = "identity") -> bytes:
    """A valid searchset of about `size` bytes (its entries carry long text), gzipped for "gzip": repeated
    text compresses about a thousand to one, which is what a decompression bomb is."""
    entry = b'{"resource":{"resourceType":"Basic","id":"pad","code":{"text":"' + b"x" * 4000 + b'"}}}'
    count = max(1, size // (len(entry) + 1))
    body = b'{"resourceType":"Bundle","type":"searchset","entry":[' + b",".join([entry] * count) + b"]}"
    return gzip.compress(body, compresslevel=9) if encoding == "gzip" else body


# --- running servers --------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that nothing listens on (until someone binds it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app: Any, port: int | None = None, *, lifespan: bool = False) -> Iterator[str]:
    """Run `app` on 127.0.0.1 in a background thread; yield `http://127.0.0.1:PORT`; stop it afterwards.
    With `lifespan`, its start-up and shut-down run too (the service's app needs them; test servers not)."""
    sock = socket.create_server((HOST, 0)) if port is None else None
    if sock is not None:
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=HOST,
            port=port,
            log_level="warning",
            lifespan="on" if lifespan else "off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]} if sock else {}, daemon=True, name=f"serving:{port}"
    )
    thread.start()

    def started() -> bool:
        if not server.started and not thread.is_alive():
            raise RuntimeError(f"the test server on port {port} exited before it started")
        return server.started

    try:
        wait_for(started, timeout=10, what=f"the test server on port {port} to start")
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        if sock is not None:
            sock.close()


class ConnectionTrap:
    """A loopback listener that only counts the connections made to it: proof that none were."""

    def __init__(self) -> None:
        self._socket = socket.create_server((HOST, 0))
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"trap:{self.port}")
        self._thread.start()

    @property
    def base(self) -> str:
        """A FHIR base URL on the trap."""
        return f"http://{HOST}:{self.port}/fhir"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:  # the accept timeout: look at the stop flag again
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> ConnectionTrap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the FHIR server ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as a test server saw it."""

    method: str
    path: str
    query: str
    authorization: str | None = None
    accept: str | None = None
    cookie: str | None = None
    request_id: str | None = None
    at: float = field(default=0.0, compare=False)  # time.monotonic() when it arrived


@dataclass
class FhirState:
    """What the server holds and how it behaves. Tests set the fields; `reset()` restores the defaults."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # resource type -> resources
    page_size: int = 50  # for searches without _count
    delay_s: float = 0.0  # every read and search answers this late
    fail_status: dict[str, int] = field(default_factory=dict)  # resource type -> HTTP status to answer
    redirect_to: str | None = None  # answer every read and search with a redirect there
    foreign_base: str | None = None  # a FHIR base off this server: where /redirect and /badnext point
    gone: set[str] = field(default_factory=set)  # "Type/id" references answered with 410 Gone
    cookies: dict[str, str] = field(default_factory=dict)  # set on every read and search answer
    not_ready: int = 0  # /metadata answers 503 ("starting") to this many probes, then 200
    # resource type -> (decoded bytes, Content-Encoding): searches answer a Bundle that large, gzipped or not
    oversized: dict[str, tuple[int, str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)  # every request, in order of arrival
    transactions: list[dict[str, Any]] = field(default_factory=list)  # bundles POSTed to the base

    def reset(self) -> None:
        defaults = FhirState()
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(defaults, name))

    def load(self, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            self.resources.setdefault(resource["resourceType"], []).append(resource)

    @property
    def data_requests(self) -> list[Recorded]:
        """The reads and searches, without the /metadata probes the service makes to learn the version."""
        return [r for r in self.requests if r.path != "/fhir/metadata"]

    @property
    def metadata_calls(self) -> list[float]:
        """When each /metadata probe arrived."""
        return [r.at for r in self.requests if r.method == "GET" and r.path == "/fhir/metadata"]

    @property
    def transaction_times(self) -> list[float]:
        return [r.at for r in self.requests if r.method == "POST" and r.path == "/fhir"]


class _Recorder:
    """ASGI wrapper that records every HTTP request before the app handles it."""

    def __init__(self, app: ASGIApp, state: FhirState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            self.state.requests.append(
                Recorded(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope["query_string"].decode(),
                    authorization=headers.get("authorization"),
                    accept=headers.get("accept"),
                    cookie=headers.get("cookie"),
                    request_id=headers.get("x-request-id"),
                    at=time.monotonic(),
                )
            )
        await self.app(scope, receive, send)


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _fhir(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@cache
def _is_resource_type(name: str) -> bool:
    try:
        get_fhir_model_class(name)
    except ValueError:  # "... is not a valid FHIR Model"
        return False
    return True


def _searchset(
    request: Request, entries: list[dict[str, Any]], next_url: str | None, total: int | None
) -> JSONResponse:
    bundle: dict[str, Any] = {
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
                "fullUrl": f"{_base(request)}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in entries
        ]
    return _fhir(bundle)


def _matches(resource: dict[str, Any], patient: str | None, codes: set[str] | None) -> bool:
    if patient is not None:
        subject = (resource.get("subject") or resource.get("patient") or {}).get("reference")
        if subject not in {f"Patient/{patient}", patient}:
            return False
    if codes is not None:
        coding = (resource.get("code") or {}).get("coding") or ()
        found = {f"{c.get('system')}|{c.get('code')}" for c in coding} | {c.get("code") for c in coding}
        if not found & codes:
            return False
    return True


def fhir_app(state: FhirState) -> ASGIApp:
    """The FHIR server's ASGI app, behaving as `state` says (read afresh on every request)."""

    async def misbehaviour(resource_type: str) -> Response | None:
        """The delay, redirect and failure switches, in that order, for reads and searches."""
        if state.delay_s:
            await asyncio.sleep(state.delay_s)  # a slow server is what the tests exercise
        if state.redirect_to:
            return RedirectResponse(state.redirect_to, status_code=302)
        if resource_type in state.fail_status:
            return _fhir({"resourceType": "OperationOutcome", "issue": []}, state.fail_status[resource_type])
        if resource_type in state.oversized:
            size, encoding = state.oversized[resource_type]
            headers = {"Content-Encoding": encoding} if encoding != "identity" else {}
            body = padded_bundle(size, encoding)
            chunks = (body[at : at + 65_536] for at in range(0, len(body), 65_536))  # streamed: no copies
            return StreamingResponse(chunks, media_type=FHIR_JSON, headers=headers)
        return None

    def with_cookies(response: Response) -> Response:
        for name, value in state.cookies.items():
            response.set_cookie(name, value)
        return response

    async def search(request: Request) -> Response:
        resource_type = request.path_params["type"]
        if not _is_resource_type(resource_type):
            return _fhir(_outcome("not-supported", "unknown resource type"), 404)
        if (answer := await misbehaviour(resource_type)) is not None:
            return answer
        params = request.query_params
        codes = set(params["code"].split(",")) if "code" in params else None
        found = [
            r for r in state.resources.get(resource_type, []) if _matches(r, params.get("patient"), codes)
        ]
        offset = int(params.get("_offset", "0"))
        size = int(params.get("_count", state.page_size))
        next_url = None
        if offset + size < len(found):
            query = "&".join(f"{k}={v}" for k, v in params.items() if k != "_offset")
            relative = f"{resource_type}?{query}&_offset={offset + size}"
            next_url = relative if params.get("_relative") == "1" else f"{_base(request)}/fhir/{relative}"
        return with_cookies(_searchset(request, found[offset : offset + size], next_url, len(found)))

    async def read(request: Request) -> Response:
        resource_type, resource_id = request.path_params["type"], request.path_params["id"]
        if not _is_resource_type(resource_type):
            return _fhir(_outcome("not-supported", "unknown resource type"), 404)
        if (answer := await misbehaviour(resource_type)) is not None:
            return answer
        if f"{resource_type}/{resource_id}" in state.gone:
            return _fhir(_outcome("deleted", "gone"), 410)
        for resource in state.resources.get(resource_type, []):
            if resource.get("id") == resource_id:
                return with_cookies(_fhir(resource))
        return _fhir(_outcome("not-found", "no such resource"), 404)

    async def metadata(request: Request) -> Response:
        if len(state.metadata_calls) <= state.not_ready:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=503)
        return _fhir({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})

    async def transaction(request: Request) -> Response:
        bundle = await request.json()
        state.transactions.append(bundle)
        entries = [{"response": {"status": "200 OK"}} for _ in bundle["entry"]]
        return _fhir({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})

    async def endless(request: Request) -> Response:
        """Always one more page; `delay` seconds per page."""
        page = int(request.query_params.get("page", "0"))
        delay = request.query_params.get("delay", "0")
        await asyncio.sleep(float(delay))  # a slow server is what the tests exercise
        next_url = f"{_base(request)}/fhir/endless?page={page + 1}&delay={delay}"
        return _searchset(request, [{**PATIENT, "id": f"e{page}"}], next_url, None)

    async def loop(request: Request) -> Response:
        return _searchset(request, [PATIENT], str(request.url), 1)

    async def bad_next(request: Request) -> Response:
        """Next link off this server (the foreign base), or (where=path) on it but outside the /fhir base."""
        if request.query_params.get("where") == "path":
            next_url = f"{_base(request)}/other/Condition?page=2"
        else:
            next_url = f"{state.foreign_base}/Condition?page=2"
        return _searchset(request, [PATIENT], next_url, 2)

    async def status(request: Request) -> Response:
        return _fhir(_outcome("exception", "failure"), int(request.path_params["code"]))

    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"{state.foreign_base}/Patient/p1", status_code=302)

    async def outcome(request: Request) -> Response:
        return _fhir(_outcome("processing", "something went wrong"))

    async def non_json(request: Request) -> Response:
        return PlainTextResponse("<html>not fhir</html>")

    async def not_fhir(request: Request) -> Response:
        return JSONResponse({"hello": "world"})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.path_params["seconds"]))  # a slow server is what the tests exercise
        return _fhir(PATIENT)

    async def anything_else(request: Request) -> Response:
        return _fhir(_outcome("not-supported", "unknown"), 404)

    app = Starlette(
        routes=[
            Route("/fhir/metadata", metadata, methods=["GET"]),
            Route("/fhir", transaction, methods=["POST"]),
            Route("/fhir/endless", endless),
            Route("/fhir/loop", loop),
            Route("/fhir/badnext", bad_next),
            Route("/fhir/status/{code:int}", status),
            Route("/fhir/redirect", redirect),
            Route("/fhir/oo", outcome),
            Route("/fhir/nonjson", non_json),
            Route("/fhir/notfhir", not_fhir),
            Route("/fhir/slow/{seconds}", slow),
            Route("/fhir/{type}", search),
            Route("/fhir/{type}/{id}", read),
            Route("/{path:path}", anything_else),
        ]
    )
    return _Recorder(app, state)


@contextmanager
def running_fhir_server(
    state: FhirState | None = None, port: int | None = None
) -> Iterator[tuple[str, FhirState]]:
    """Start the FHIR server (on `port`, or a free one); yield its base URL (…/fhir) and its state."""
    state = FhirState() if state is None else state
    with serving(fhir_app(state), port) as url:
        yield f"{url}/fhir", state
