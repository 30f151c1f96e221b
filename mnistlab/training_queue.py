"""The training queue as it stands: its fair order, the next job, and a run's place, wait and gathering.

The rules are `mnistlab.scheduling`'s plain functions over plain data; `TrainingQueue` feeds them what they need: the
registry's waiting and training networks, the students' trained seconds of the last `FAIRNESS_HOURS` (read once from
the database, then credited as networks finish), the backend's places and the recorded speeds (`mnistlab.estimates`).
Every method is called with the registry's lock held (`mnistlab.jobs` holds it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from mnistlab import scheduling
from mnistlab.estimates import Estimates
from mnistlab.following import LiveRun, Network, Registry
from mnistlab.packing import MAX_PACK
from mnistlab.runs import QUEUED, RunStore

# A dense network waits this long for classmates pressing Train in the same moment, to train in one pack with them.
GATHER_SECONDS = 1.5
# The fair queue counts the training seconds of the last this many hours.
FAIRNESS_HOURS = 12

# A run's place: its position (1 for the next job) and the queued jobs, each a list of networks.
QueuePlace = tuple[int, list[list[Network]]]


class TrainingQueue:
    """The waiting networks of one server, in the order and the packs the rules give them."""

    def __init__(self, registry: Registry, store: RunStore, estimates: Estimates, capacity: Callable[[], int]):
        self._registry = registry
        self._store = store
        self._estimates = estimates
        self._capacity = capacity
        self._trained: dict[str, float] | None = None

    def trained_seconds(self) -> dict[str, float]:
        """Each student's training seconds of the last `FAIRNESS_HOURS` ({} while the database does not answer)."""
        if self._trained is None:
            try:
                self._trained = self._store.training_seconds_by_owner(time.time() - FAIRNESS_HOURS * 3600)
            except sa.exc.DBAPIError:
                return {}
        return self._trained

    def _ordered(self) -> tuple[list[scheduling.Waiting], dict[str, Network]]:
        """The waiting networks as the rules see them, in the fair order, and the networks by training key."""
        view = self._registry.waiting_view()
        order = scheduling.fair_order([waiting for waiting, _network in view.values()], self.trained_seconds())
        return order, {key: network for key, (_waiting, network) in view.items()}

    def fair_order(self) -> list[Network]:
        """The waiting networks, the one to train first first."""
        order, networks = self._ordered()
        return [networks[waiting.key] for waiting in order]

    def next_job(self) -> list[Network] | None:
        """The networks of the next job: the fairest eligible network, and those that can share its batches."""
        order, networks = self._ordered()
        chosen = scheduling.next_job(order, time.monotonic(), GATHER_SECONDS, MAX_PACK)
        return None if chosen is None else [networks[waiting.key] for waiting in chosen]

    def place_of(self, live: LiveRun) -> QueuePlace | None:
        """The run's place in the queue (1 for the next job) and the queued jobs; None when it does not wait."""
        if live.status != QUEUED or live.network is None or live.network not in self._registry.waiting:
            return None
        order, networks = self._ordered()
        jobs = scheduling.queued_jobs(order, MAX_PACK)
        return scheduling.place_of(live.network.key, jobs), [[networks[waiting.key] for waiting in job] for job in jobs]

    def wait_estimate(self, place: QueuePlace | None) -> float | None:
        """The estimated wait of a run at `place` (see `place_of`); None when it does not wait."""
        if place is None:
            return None
        position, queued = place
        now = time.time()
        jobs = self._registry.jobs.values()
        seconds = self._estimates.seconds
        remaining = [max(seconds(network.settings) for network in job.networks) - (now - job.started_at) for job in jobs]
        # A pack ahead counts as its longest network: it takes at least that (longer when many networks share the cores).
        ahead = [max(seconds(network.settings) for network in job) for job in queued[: position - 1]]
        free = max(0, max(1, self._capacity()) - len(self._registry.jobs))
        return scheduling.wait_estimate(ahead, remaining, free)

    def gathering(self, live: LiveRun, place: QueuePlace | None) -> bool:
        """Whether the run waits on a free place for classmates to pack with (not behind other jobs)."""
        free = self._capacity() - len(self._registry.jobs)
        return scheduling.is_gathering(place[0] if place else None, live.network is not None and live.network.packable, free)

    def credit(self, network: Network) -> None:
        """Add a finished network's seconds to its followers' totals (shared equally)."""
        if network.started_at is None:
            return
        owners = [live.owner for live in self._registry.followers(network)]
        self._trained = scheduling.credit(self.trained_seconds(), owners, time.time() - network.started_at)
