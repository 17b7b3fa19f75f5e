"""The SQLite file under the store: connection, atomic transactions, the fencing lease.

Why its own module: `SqliteStore` (`trainguard.store.sqlite`) maps records to rows; what makes
one SQLite file safe to share between processes — the controller, ``trainguard job``
commands, health agents — is here. WAL mode lets readers work while the controller writes;
``busy_timeout`` makes concurrent writers wait instead of failing. Every multi-row change runs
in one ``BEGIN IMMEDIATE`` transaction (`SqliteDatabase.transaction`).

Writes are *fenced* once a controller calls `fence`: every transaction then checks, inside
itself, that the lease still names that controller, and refuses with `LeaseLostError` when a
successor took over — so a controller stalled mid-step (SIGSTOP, a long swap) and resumed
cannot write a job's status or a pod beside its successor. The lease lives here because the
fence reads it inside every transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainguard.errors import LeaseLostError, StoreError
from trainguard.permissions import create_private_file, private_dir
from trainguard.store import sqlite_faults as fault_rows
from trainguard.store import sqlite_rows as rows
from trainguard.store.records import Lease


class SqliteDatabase:
    """One SQLite file: connection, transactions, the controller lease and its fence.

    Args:
        path: the database file (created ``0600`` with its directory ``0700`` if missing:
            it holds job tokens and manifests; SQLite gives the ``-wal``/``-shm`` files the
            database file's mode).
        timeout: seconds a writer waits for another process's lock.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        create_private_file(self.path)
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._fence: str | None = None
        self._parser = rows.JobParser()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._conn.executescript(rows.SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an older trainguard up to `SCHEMA` (columns added since,
        fault specs as JSON)."""
        with self.transaction(fenced=False):
            fault_rows.migrate(self._conn)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self, *, fenced: bool = True) -> Iterator[None]:
        """Group writes into one atomic transaction (re-entrant within a thread).

        Raises:
            LeaseLostError: the store is fenced (`fence`) and its holder lost the lease.
        """
        with self._lock:
            outer = self._depth == 0
            if outer:
                with self._mapped():
                    self._conn.execute("BEGIN IMMEDIATE")
                if fenced and self._fence is not None:
                    self._check_fence(self._fence)
            self._depth += 1
            try:
                with self._mapped():
                    yield
            except BaseException:
                self._depth -= 1
                if outer:
                    with contextlib.suppress(sqlite3.Error):  # the cause is what matters
                        self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                with self._mapped():
                    self._conn.execute("COMMIT")

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """SQLite's errors as `StoreError` (the boundary: callers never see sqlite3)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {type(exc).__name__}: {exc}") from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, self._mapped():
            return self._conn.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._conn.execute(sql, args)

    # --- lease -----------------------------------------------------------------------------

    def current_lease(self) -> Lease | None:
        """The controller lease, if any."""
        found = self._query("SELECT * FROM controller_lease WHERE id=1")
        if not found:
            return None
        r = found[0]
        return Lease(
            r["holder"], r["pid"], r["heartbeat"], r["callback_url"], r["metrics_url"],
            r["renewals"], r["duration"],
        )  # fmt: skip

    def take_lease(self, lease: Lease, *, expect: tuple[str, int] | None) -> Lease | None:
        """Compare-and-swap the lease; returns the lease written (renewals counted) or None.

        Args:
            lease: the new holder's lease (its ``renewals`` is ignored: the store counts).
            expect: ``(holder, renewals)`` the lease must still show, as the caller observed
                it; None means "no lease at all".
        """
        with self.transaction(fenced=False):
            current = self.current_lease()
            seen = None if current is None else (current.holder, current.renewals)
            if seen != expect:
                return None
            taken = Lease(
                lease.holder, lease.pid, lease.heartbeat, lease.callback_url, lease.metrics_url,
                0 if current is None else current.renewals + 1, lease.duration,
            )  # fmt: skip
            self._conn.execute(
                "INSERT OR REPLACE INTO controller_lease VALUES (1,?,?,?,?,?,?,?)",
                (taken.holder, taken.pid, taken.heartbeat, taken.callback_url, taken.metrics_url,
                 taken.renewals, taken.duration),
            )  # fmt: skip
        return taken

    def release_lease(self, holder: str) -> None:
        """Drop the lease if ``holder`` has it."""
        with self.transaction(fenced=False):
            self._conn.execute("DELETE FROM controller_lease WHERE id=1 AND holder=?", (holder,))

    def fence(self, holder: str | None) -> None:
        """Refuse every later write unless ``holder`` holds the lease (None: stop fencing)."""
        self._fence = holder

    def _check_fence(self, holder: str) -> None:
        row = self._conn.execute("SELECT holder FROM controller_lease WHERE id=1").fetchone()
        if row is None or row["holder"] != holder:
            self._conn.execute("ROLLBACK")
            raise LeaseLostError(
                f"controller {holder} lost its lease"
                + (f" to {row['holder']}" if row is not None else "")
                + "; the write was refused"
            )
