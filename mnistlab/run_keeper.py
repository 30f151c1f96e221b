"""Keeping the database up to date with the runs in memory: their state, this server's heartbeat, dead servers' runs.

The job manager keeps every active run's state in memory; `RunKeeper` writes it down:

- `persist(run)` writes a run's whole state at once (a status change, an epoch). When the
  database does not answer (busy, locked, gone), nothing waits: the run is marked unsaved,
  its page says saving is delayed, and the keeper's thread writes it later.
- Every second the keeper's thread writes the live curves that changed (at most every
  `PERSIST_EVERY` seconds per run) and the delayed saves, cancels the runs no page has asked
  about for `abandon_after` seconds and whose owner has no page open (`page_open`), and
  forgets runs that ended ten minutes ago.
- Every 5 s it records this server's heartbeat (and its active runs'), refreshes the
  recorded runs the estimates come from, and marks as interrupted the active runs of any
  server (a replica on the same database) that is gone: its process ended on this machine,
  or its heartbeat is `DEAD_AFTER` seconds old. A replica killed mid-training is so seen
  within about half a minute. It judges others only after the database has answered it for
  `DEAD_AFTER` seconds in a row: after the database was unreachable, everyone's heartbeat is
  old, and every replica first gets the time to write a new one.

Nothing may end the thread: a database that is locked or gone is retried, at most every
`HEARTBEAT_EVERY` seconds (each try waits up to the database's own busy timeout), so every
live replica writes its heartbeat soon after the database answers again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from mnistlab.following import LiveRun, Registry
from mnistlab.runs import ACTIVE, RunSnapshot, RunStore
from mnistlab.scheduling import SERVER_OWNER

# The live curve is written to the database at most this often (status changes are written at once).
PERSIST_EVERY = 3.0
# A run that ended is kept in memory this long (a page that asks finds it at once), then read from the database.
FORGET_AFTER = 600.0
HEARTBEAT_EVERY = 5.0
SWEEP_EVERY = 5.0
# A server whose heartbeat is this old is gone (it writes one every HEARTBEAT_EVERY seconds).
DEAD_AFTER = 20.0


class RunKeeper:
    """Writes runs' states, heartbeats and sweeps for one job manager (see the module docstring)."""

    def __init__(
        self,
        store: RunStore,
        registry: Registry,
        server_id: str,
        host: str,
        pid: int,
        *,
        snapshot_of: Callable[[LiveRun], RunSnapshot],
        cancel_abandoned: Callable[[int], None],
        page_open: Callable[[str], bool],
        refresh: Callable[[], None],
        note_problem: Callable[[BaseException | None], None],
        abandon_after: float,
        stale_after: float,
    ):
        self.store = store
        self.registry = registry
        self.server_id = server_id
        self.host, self.pid = host, pid
        self.answered_since: float | None = None  # since when the database has answered every heartbeat
        self.snapshot_of = snapshot_of
        self.cancel_abandoned = cancel_abandoned
        self.page_open = page_open
        self.refresh = refresh
        self.note_problem = note_problem
        self.abandon_after = abandon_after
        self.stale_after = stale_after
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="mnistlab-keeper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def persist(self, live: LiveRun) -> bool:
        """Write the run's state now; when the database does not answer, keep it for the keeper to write later."""
        with self.registry.lock:
            snapshot = self.snapshot_of(live)
            live.dirty = False
            live.persisted_at = time.monotonic()
        try:
            self.store.save_state(snapshot)
        except (sa.exc.DBAPIError, OSError) as error:
            self.note_problem(error)
            with self.registry.lock:
                live.unsaved = True
            return False
        with self.registry.lock:
            live.unsaved = False
        return True

    def _loop(self) -> None:
        last_heartbeat = last_sweep = 0.0
        delay = 1.0
        while True:
            with self.registry.lock:
                if self.stopping:
                    return
            try:
                delay = 1.0 if self.keep(last_heartbeat, last_sweep) else min(max(1.0, HEARTBEAT_EVERY), delay * 2)
                now = time.monotonic()
                if now - last_heartbeat > HEARTBEAT_EVERY:
                    last_heartbeat = now
                if now - last_sweep > SWEEP_EVERY:
                    last_sweep = now
            except Exception as error:  # noqa: BLE001 (the keeper must outlive any one failure)
                self.note_problem(error)
                delay = min(max(1.0, HEARTBEAT_EVERY), delay * 2)
            time.sleep(delay)

    def keep(self, last_heartbeat: float, last_sweep: float) -> bool:
        """One round of the keeper; False when the database did not answer (the next round waits longer)."""
        now = time.monotonic()
        registry = self.registry
        with registry.lock:
            pending = [
                live
                for live in registry.live.values()
                if live.unsaved or (live.dirty and now - live.persisted_at >= PERSIST_EVERY) or (live.status not in ACTIVE and live.dirty)
            ]
            unasked = [
                (live.run_id, live.owner)
                for live in registry.live.values()
                if live.status in ACTIVE and not live.stopping and live.owner != SERVER_OWNER and now - live.last_asked > self.abandon_after
            ]
            active = [live.run_id for live in registry.live.values() if live.status in ACTIVE]
            old = [
                run_id
                for run_id, live in registry.live.items()
                if live.status not in ACTIVE and live.ended_at and time.time() - live.ended_at > FORGET_AFTER and not live.unsaved
            ]
            for run_id in old:
                del registry.live[run_id]
        healthy = all([self.persist(live) for live in pending])
        # Abandoned: no page asked about it for a while, and its owner has no page open (under load a page's reruns can
        # fall behind; its tab is still open).
        for run_id in [run_id for run_id, owner in unasked if not self.page_open(owner)]:
            self.cancel_abandoned(run_id)
        try:
            if now - last_heartbeat > HEARTBEAT_EVERY:
                self.store.heartbeat(active)
                self.store.server_heartbeat(self.server_id, self.host, self.pid)
                self.answered_since = self.answered_since or now
                self.refresh()
            if now - last_sweep > SWEEP_EVERY and self.answered_since is not None and now - self.answered_since >= DEAD_AFTER:
                # Runs of another replica that is gone (a shared database): they are not coming back.
                self.store.interrupt_dead_servers(self.server_id, self.host, stale_after=DEAD_AFTER)
                self.store.interrupt_stale(older_than=self.stale_after)
        except sa.exc.DBAPIError as error:
            self.answered_since = None
            self.note_problem(error)
            return False
        if healthy:
            self.note_problem(None)
        return healthy
