"""Fault-request rows of the SQLite store: the typed `FaultSpec` as JSON, and the migration.

The spec column holds JSON made and read only here, so the CLI, the store's callers and the
controller's injector pass a `FaultSpec` around and never re-parse text. Stores written before
that held ``KIND:key=value`` text, which `migrate` rewrites as JSON on open — the way
`SqliteStore` adds columns to older schemas. That text was always written from a parsed spec,
so it parses again; a row hand-edited past parsing is dropped with a warning naming it, rather
than failing every later read of the fault queue.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from pydantic import TypeAdapter, ValidationError

from trainguard.errors import CorruptRecord, UsageError
from trainguard.spec.faults import FaultSpec, parse_fault
from trainguard.store.records import FaultOutcome, FaultRequest

log = logging.getLogger(__name__)
_SPEC: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)
ADDED_COLUMNS = {
    "outcome": "TEXT NOT NULL DEFAULT 'pending'",
    "training_at": "REAL",
    "reported_step": "INTEGER",
}
"""Columns of ``faults`` added since the first schema, with their definitions."""


def spec_json(spec: FaultSpec) -> str:
    """The spec column's JSON for ``spec``."""
    return _SPEC.dump_json(spec).decode()


def fault(r: sqlite3.Row) -> FaultRequest:
    """A ``faults`` row as a `FaultRequest`; `CorruptRecord` names a row whose spec is bad."""
    try:
        spec = _SPEC.validate_json(r["spec"])
    except ValidationError as exc:
        raise CorruptRecord(f"fault request {r['id']}: stored spec is invalid: {exc}") from exc
    return FaultRequest(
        r["id"], r["namespace"], r["job"], spec, r["created_at"], r["done_at"], r["result"],
        FaultOutcome(r["outcome"]), r["training_at"], r["reported_step"],
    )  # fmt: skip


def migrate(conn: sqlite3.Connection) -> None:
    """Bring ``faults`` written by an older trainguard up to the schema: added columns, the
    outcome older stores kept only in the result text, and text specs rewritten as JSON."""
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(faults)")}
    for name, definition in ADDED_COLUMNS.items():
        if name not in columns:
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                conn.execute(f"ALTER TABLE faults ADD COLUMN {name} {definition}")
            if name == "outcome":
                _outcome_from_result(conn)
    _specs_as_json(conn)


def _outcome_from_result(conn: sqlite3.Connection) -> None:
    conn.execute(  # older stores wrote the outcome into the result text only
        "UPDATE faults SET outcome=CASE WHEN result LIKE 'not injected%' "
        "OR result='job deleted' THEN ? ELSE ? END "
        "WHERE done_at IS NOT NULL AND outcome='pending'",
        (FaultOutcome.NOT_INJECTED.value, FaultOutcome.INJECTED.value),
    )


def _specs_as_json(conn: sqlite3.Connection) -> None:
    legacy = conn.execute("SELECT id, spec FROM faults WHERE spec NOT LIKE '{%'").fetchall()
    for row in legacy:
        try:
            spec = parse_fault(row["spec"])
        except UsageError as exc:
            log.warning("dropping fault request %s: its stored spec is unreadable: %s", row[0], exc)
            conn.execute("DELETE FROM faults WHERE id=?", (row["id"],))
            continue
        conn.execute("UPDATE faults SET spec=? WHERE id=?", (spec_json(spec), row["id"]))
