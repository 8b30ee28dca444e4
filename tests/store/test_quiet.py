"""The quiet-card store (V2-30), on SQLite and PostgreSQL: cards shown and overrides remembered per keyed
patient, the patient key's secret generated once and shared by every replica, no patient id in clear."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select, text

from cds_service.store import Database, PatientKeys, QuietCards, ShownCard
from cds_service.store.schema import GeneratedSecretRow

T = datetime(2026, 11, 1, 12, tzinfo=UTC)
SECRET = "s" * 32
SELECT = "order-select"


async def migrated(url: str) -> Database:
    database = Database(url)
    await database.migrate()
    return database


def shown(uuid: str, patient: str, rule: str, unmet: tuple[str, ...] = (), drafts=(), hook=SELECT):
    return ShownCard(uuid, hook, patient, rule, unmet, frozenset(drafts))


def test_patient_keys_are_keyed_hashes_that_name_no_one() -> None:
    keys, other = PatientKeys(SECRET.encode()), PatientKeys(("t" * 32).encode())
    key = keys.patient("https://ehr.example.org|", "p03")
    assert key == keys.patient("https://ehr.example.org|", "p03")  # stable: the same patient next call
    assert len(key) == 64 and int(key, 16) >= 0 and "p03" not in key
    assert key != keys.patient("https://ehr.example.org|", "p04")
    assert key != keys.patient("https://other-ehr.example.org|", "p03")  # ids are unique per EHR only
    assert key != other.patient("https://ehr.example.org|", "p03")  # without the secret, no match
    assert keys.draft(key, "ServiceRequest/d1") != keys.draft(key, "ServiceRequest/d2")
    assert SECRET not in repr(keys)


async def test_a_configured_secret_is_used_and_nothing_is_stored(database_url: str) -> None:
    database = await migrated(database_url)
    keys = await PatientKeys.load(database, SECRET)
    assert keys.patient("", "p1") == PatientKeys(SECRET.encode()).patient("", "p1")
    async with database.sessions() as session:
        assert (await session.scalars(select(GeneratedSecretRow))).all() == []
    await database.close()


async def test_without_a_secret_one_is_generated_once_and_shared_by_replicas(database_url: str) -> None:
    replicas = [await migrated(database_url), Database(database_url), Database(database_url)]
    first = await asyncio.gather(*(PatientKeys.load(replica, None) for replica in replicas))
    again = await PatientKeys.load(replicas[0], None)  # a restart
    assert len({keys.patient("", "p1") for keys in [*first, again]}) == 1
    assert first[0].patient("", "p1") != PatientKeys(SECRET.encode()).patient("", "p1")
    async with replicas[0].sessions() as session:
        (row,) = (await session.scalars(select(GeneratedSecretRow))).all()
    assert len(row.value) == 64  # 256 random bits
    for replica in replicas:
        await replica.close()


async def test_snoozes_follow_an_override_of_a_shown_card(database_url: str) -> None:
    database = await migrated(database_url)
    store = QuietCards(database)
    store.remember([shown("c1", "pk1", "REV-NOT-MET", ("R2", "C2")), shown("c2", "pk1", "HW-MET")], T)
    assert await store.snooze(["c1", "never-shown"], T + timedelta(minutes=1)) == 1  # flushes first
    recent = await store.recent(
        "pk1", {"REV-NOT-MET", "HW-MET"}, snoozed_since=T, shown_at=SELECT, shown_since=T
    )
    assert recent.snoozed == {"REV-NOT-MET": ("R2", "C2")}
    later = await store.recent(
        "pk1", {"REV-NOT-MET"}, snoozed_since=T + timedelta(minutes=2), shown_at=SELECT, shown_since=T
    )
    assert later.snoozed == {}  # overridden before the snooze period began
    other = await store.recent("pk2", {"REV-NOT-MET"}, snoozed_since=T, shown_at=SELECT, shown_since=T)
    assert other.snoozed == {} and other.shown == []
    await database.close()


async def test_a_later_override_replaces_the_snoozed_list(database_url: str) -> None:
    database = await migrated(database_url)
    store = QuietCards(database)
    store.remember([shown("c1", "pk1", "R", ("C1",)), shown("c2", "pk1", "R", ("C2",))], T)
    await store.snooze(["c2"], T + timedelta(minutes=2))
    await store.snooze(["c1"], T + timedelta(minutes=1))  # an older override arriving late changes nothing
    recent = await store.recent("pk1", {"R"}, snoozed_since=T, shown_at=SELECT, shown_since=T)
    assert recent.snoozed == {"R": ("C2",)}
    await database.close()


async def test_recently_shown_cards_are_found_before_and_after_they_are_written(database_url: str) -> None:
    database = await migrated(database_url)
    store = QuietCards(database)
    store.remember([shown("c1", "pk1", "HW-MET", (), {"d1"}), shown("c2", "pk1", "X", hook="order-sign")], T)

    async def found(since: datetime) -> list[tuple[str, frozenset[str]]]:
        recent = await store.recent(
            "pk1", {"HW-MET", "X"}, snoozed_since=None, shown_at=SELECT, shown_since=since
        )
        return [(card.rule_id, card.drafts) for card in recent.shown]

    assert await found(T) == [("HW-MET", frozenset({"d1"}))]  # still in the write-behind buffer
    await store.flush()
    assert await found(T) == [("HW-MET", frozenset({"d1"}))]  # now from the database
    assert await found(T + timedelta(seconds=1)) == []
    replica = Database(database_url)  # another replica reads the same rows
    assert [
        c.card_uuid
        for c in (
            await QuietCards(replica).recent(
                "pk1", {"HW-MET"}, snoozed_since=None, shown_at=SELECT, shown_since=T
            )
        ).shown
    ] == ["c1"]
    await replica.close()
    await database.close()


async def test_old_shown_cards_and_snoozes_are_forgotten(database_url: str) -> None:
    database = await migrated(database_url)
    store = QuietCards(database)
    store.remember([shown("c1", "pk1", "R"), shown("c2", "pk1", "S")], T)
    await store.snooze(["c1"], T)
    store.remember([shown("c3", "pk1", "R")], T + timedelta(days=1))
    await store.flush()
    assert await store.forget_shown_before(T + timedelta(hours=1)) == 2
    assert await store.forget_snoozes_before(T + timedelta(hours=1)) == 1
    recent = await store.recent("pk1", {"R", "S"}, snoozed_since=T, shown_at=SELECT, shown_since=T)
    assert recent.snoozed == {} and [c.card_uuid for c in recent.shown] == ["c3"]
    await database.close()


async def test_the_tables_hold_keys_never_patient_ids(database_url: str) -> None:
    database = await migrated(database_url)
    keys = PatientKeys(SECRET.encode())
    patient = keys.patient("", "p03-cc-incomplete-radicular")
    draft = keys.draft(patient, "ServiceRequest/p03-cc-incomplete-radicular-draft-1")
    store = QuietCards(database)
    store.remember([shown("c1", patient, "REV-NOT-MET", ("R3",), {draft})], T)
    await store.snooze(["c1"], T)
    async with database.engine.connect() as connection:
        columns = {
            table: {
                c["name"] for c in await connection.run_sync(lambda s, t=table: inspect(s).get_columns(t))
            }
            for table in ("shown_card", "snooze")
        }
        rows = [
            str(tuple(row))
            for table in ("shown_card", "snooze")
            for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()
        ]
    await database.close()
    assert columns == {
        "shown_card": {"card_uuid", "hook", "patient_key", "rule_id", "unmet", "drafts", "issued_at"},
        "snooze": {"patient_key", "rule_id", "unmet", "overridden_at"},
    }
    assert len(rows) == 2 and all(patient in row for row in rows)
    assert not any("p03" in row for row in rows)
