"""Several replicas (one with two workers) behind one public URL, sharing one PostgreSQL database, started by
`cds-service serve` as in production: a token is accepted once across all of them, a card issued by one is
attributed when its feedback reaches another, `/metrics` adds up a replica's workers, and the logs are JSON
lines that carry the request id and no patient data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.parser import text_string_to_metric_families

from cds_service.store import Database, IssuedCards

from support.databases import fresh_database
from support.fhir_server import free_port
from support.hooks import ROOT, SERVICES, hook_request, overridden
from support.issued import rules_of
from support.waiting import WaitTimeout, wait_for

KEY = ec.generate_private_key(ec.SECP384R1())
ISS = "https://ehr.example.org"
PUBLIC = "https://cds.example.org"  # the load balancer's URL: the `aud` of every token, whichever replica
CALL = f"/cds-services/{SERVICES['order-sign']}"


@dataclass
class Replica:
    base: str
    process: subprocess.Popen[str]
    log_path: Path
    database_url: str

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def logged_request_ids(self) -> set[str]:
        ids = set()
        for line in self.log_path.read_text().splitlines():
            try:
                ids.add(json.loads(line).get("request_id"))
            except json.JSONDecodeError:  # not every line needs to parse yet: logs() checks that
                continue
        return ids


def bearer(path: str) -> dict[str, str]:
    now = int(time.time())
    payload = {"iss": ISS, "aud": PUBLIC + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return {
        "Authorization": "Bearer " + jwt.encode(payload, KEY, "ES384", headers={"kid": "k1", "typ": "JWT"})
    }


def start(tmp_path: Path, name: str, database_url: str, workers: int) -> Replica:
    clients = tmp_path / "trusted-clients.json"
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    clients.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": {"keys": [jwk]}, "fhir_servers": []}]}))
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "CDS_DATABASE_URL": database_url,
        "CDS_CARD_JOURNAL_DIR": str(tmp_path / "journal"),  # one folder for all replicas, as on one volume
        "CDS_TRUSTED_CLIENTS": str(clients),
        "CDS_PUBLIC_BASE_URL": PUBLIC,
        "CDS_PATIENT_KEY_SECRET": "replicas-share-this-patient-key-secret",  # PostgreSQL needs one (V2-30)
        "CDS_RELOAD": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{name}"),
    }
    (tmp_path / f"metrics-{name}").mkdir()
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:  # the replica writes to its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text()
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200

    try:
        wait_for(
            ready,
            timeout=60,
            interval=0.05,
            what=f"replica {name} to be ready",
            ignoring=(httpx.TransportError,),
        )
    except WaitTimeout as timeout:
        raise AssertionError(f"{name} did not become ready: {log_path.read_text()}") from timeout
    return Replica(base, process, log_path, database_url)


def issued(database_url: str, card_uuid: str) -> dict[str, str]:
    """What the shared database says the card is (written behind by the replica that issued it)."""

    async def lookup() -> dict[str, str]:
        database = Database(database_url)
        try:
            return await rules_of(IssuedCards(database, timedelta(days=30)), [card_uuid])
        finally:
            await database.close()

    return asyncio.run(lookup())


@pytest.fixture
def replicas(postgres: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    with fresh_database(postgres) as database_url:
        a = start(tmp_path, "a", database_url, workers=2)
        b = start(tmp_path, "b", database_url, workers=1)
        try:
            yield a, b
        finally:
            for replica in (a, b):
                replica.process.terminate()
                replica.process.wait(timeout=30)


def counter(replica: Replica, name: str, **labels: str) -> float:
    text = httpx.get(f"{replica.base}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def call(replica: Replica, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = {**bearer(CALL), **(headers or {})}
    with httpx.Client() as client:  # a connection per call, so the kernel spreads them over the workers
        return client.post(
            f"{replica.base}{CALL}", json=hook_request("order-sign"), headers=headers, timeout=10
        )


def test_replicas_share_replay_protection_cards_and_count_every_worker(replicas) -> None:
    a, b = replicas
    token = bearer(CALL)
    assert httpx.post(f"{a.base}{CALL}", json=hook_request("order-sign"), headers=token).status_code == 200
    assert httpx.post(f"{b.base}{CALL}", json=hook_request("order-sign"), headers=token).status_code == 401

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: call(a), range(40)))
    assert {response.status_code for response in responses} == {200}
    assert counter(a, "cds_requests_total", action="call", status="200") == 41
    assert counter(a, "cds_requests_total", action="call", status="401") == 0
    assert counter(b, "cds_requests_total", action="call", status="401") == 1
    pids = {line["process"] for line in a.logs() if line.get("action") == "call"}
    assert len(pids) == 2, "both workers of replica a served calls"

    card = responses[0].json()["cards"][0]
    feedback = {"feedback": [overridden(card)]}
    # cards are written behind, within FLUSH_INTERVAL_S; feedback comes after a human read them
    wait_for(lambda: issued(a.database_url, card["uuid"]), timeout=10, what="the card in the shared database")
    path = f"{CALL}/feedback"
    assert httpx.post(f"{b.base}{path}", json=feedback, headers=bearer(path)).status_code == 200
    rule = card["source"]["topic"]["code"]
    assert counter(b, "cds_feedback_total", rule_id=rule, outcome="overridden") == 1


def test_logs_are_json_lines_with_the_request_id_and_no_patient_data(replicas) -> None:
    a, _ = replicas
    body = hook_request("order-sign")
    patient = body["context"]["patientId"]
    response = call(a, {"X-Request-ID": "ehr-call-0001"})
    assert response.headers["X-Request-ID"] == "ehr-call-0001"
    made_up = call(a).headers["X-Request-ID"]
    assert len(made_up) == 32  # made up when the caller sends none
    wait_for(
        lambda: {"ehr-call-0001", made_up} <= a.logged_request_ids(), timeout=10, what="both calls in the log"
    )
    lines = a.logs()  # every line parses as JSON (json.loads above raises otherwise)
    audit = [line for line in lines if line.get("request_id") == "ehr-call-0001"]
    assert [(line["action"], line["status"], line["logger"]) for line in audit] == [
        ("call", 200, "cds_service.audit")
    ]
    assert {"time", "level", "message"} <= audit[0].keys()
    assert patient not in a.log_path.read_text()
