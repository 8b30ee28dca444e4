"""The floor endpoint for the HTTP benchmark: the same server (uvicorn, same worker count and flags) and the
same JSON library as the service, but it only reads and parses the request body with `orjson.loads` and
answers a fixed `{"cards": []}`. Whatever the service costs above this is the service's own work."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

EMPTY = orjson.dumps({"cards": []})


async def floor(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(EMPTY, media_type="application/json")


app = Starlette(routes=[Route("/cds-services/{service_id}", floor, methods=["POST"])])
