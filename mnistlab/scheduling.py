"""The fair queue's rules: who trains next, which networks train together, and each waiting run's place and wait.

Plain functions over plain data: no thread, backend or database. `mnistlab.jobs.JobManager`
describes its waiting networks as `Waiting` values and applies these rules to them:

- **Order** (`fair_order`). A free place goes to the waiting network of the student who has
  trained least (seconds of the last hours; a network several students follow counts its
  least-trained follower; the server's own shared runs count as none), then to the one that
  has waited longest.
- **Packs** (`pack_of`). A dense network takes along the waiting networks that read the same
  batches (the same `pack_key`), up to `max_pack` in all, in the fair order. A pack is one
  place in the queue (`queued_jobs`).
- **Gathering** (`next_job`). A dense network that could start now first waits
  `gather_seconds` after it was queued, for classmates pressing Train in the same moment;
  a network that trains alone (a CNN) never waits.
- **Place and wait** (`place_of`, `wait_estimate`, `is_gathering`). A run's place is its job's
  number in the queue (1: next); its wait, the time until a place is free for it, from the
  estimates of the jobs training and of those ahead of it.
- **Fair shares** (`credit`). A network's training seconds are shared equally by its followers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The owner of runs that everyone shares (a page's quick model): it never counts as having trained.
SERVER_OWNER = "server"


@dataclass(frozen=True)
class Waiting:
    """A network waiting for a place, as the rules see it."""

    key: str  # its training key: one network per key waits
    owners: tuple[str, ...]  # the owners of the runs following it
    queued_at: float  # when it was queued (any clock, the same for all)
    pack_key: tuple | None = None  # the batches it reads, when it can train in a pack; None: it trains alone

    @property
    def packable(self) -> bool:
        return self.pack_key is not None


def priority(network: Waiting, trained: Mapping[str, float]) -> tuple[float, float]:
    """The sort key of the fair order: the least-trained follower's seconds, then the time it was queued."""
    least = min((0.0 if owner == SERVER_OWNER else trained.get(owner, 0.0) for owner in network.owners), default=0.0)
    return least, network.queued_at


def fair_order(waiting: Sequence[Waiting], trained: Mapping[str, float]) -> list[Waiting]:
    """The waiting networks, next first."""
    return sorted(waiting, key=lambda network: priority(network, trained))


def pack_of(first: Waiting, order: Sequence[Waiting], max_pack: int) -> list[Waiting]:
    """The networks that train in one job with `first`: itself and, when it packs, the networks of `order` that read
    its batches (at most `max_pack` in all)."""
    chosen = [first]
    if first.packable:
        chosen += [other for other in order if other is not first and other.pack_key == first.pack_key][: max_pack - 1]
    return chosen


def queued_jobs(order: Sequence[Waiting], max_pack: int) -> list[list[Waiting]]:
    """The waiting networks (in the fair order) grouped into the jobs they will train in, next first."""
    remaining, jobs = list(order), []
    while remaining:
        job = pack_of(remaining[0], remaining, max_pack)
        jobs.append(job)
        remaining = [network for network in remaining if network not in job]
    return jobs


def next_job(order: Sequence[Waiting], now: float, gather_seconds: float, max_pack: int) -> list[Waiting] | None:
    """The networks of the job to start on a free place now: the first network in the fair order that is not still
    gathering classmates, with those that pack with it; None when every waiting network is still gathering."""
    for network in order:
        if network.packable and now - network.queued_at < gather_seconds:
            continue  # classmates may be pressing Train in this same moment: wait for them
        return pack_of(network, order, max_pack)
    return None


def place_of(key: str, jobs: Sequence[Sequence[Waiting]]) -> int | None:
    """The place in the queue (1: the next job) of the network with training key `key`; None when it does not wait."""
    return next((place for place, job in enumerate(jobs, 1) if any(network.key == key for network in job)), None)


def is_gathering(place: int | None, packable: bool, free_places: int) -> bool:
    """A run is gathering when its network is in the next job, a place is free, and it only waits for classmates."""
    return place == 1 and packable and free_places > 0


def wait_estimate(ahead: Sequence[float], remaining: Sequence[float], free_places: int) -> float:
    """The estimated seconds until a place is free for a job, from the estimated seconds of each job ahead of it in the
    queue (`ahead`) and the seconds left of each job training now (`remaining`), with `free_places` free now.

    Places free up in order, and the jobs ahead take them one after another."""
    finish = sorted([0.0] * max(0, free_places) + [max(0.0, seconds) for seconds in remaining])
    if not finish:
        return 0.0
    for seconds in ahead:
        finish[0] += seconds
        finish.sort()
    return finish[0]


def credit(trained: Mapping[str, float], owners: Sequence[str], seconds: float) -> dict[str, float]:
    """The training seconds per owner after a network trained `seconds` for `owners` (shared equally)."""
    totals = dict(trained)
    for owner in owners:
        totals[owner] = totals.get(owner, 0.0) + seconds / max(1, len(owners))
    return totals
