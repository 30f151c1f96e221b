"""What the job manager needs of a backend (where trainings run), and what it says of the backend's places.

Two backends implement `Backend`: `mnistlab.process_backend` (worker processes on this
machine) and `mnistlab.ray_backend` (a Ray cluster of a computer lab's PCs). `ServerLoad`
and `Place` are what the Train page's "Trainings on this server" panel shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mnistlab.worker import JobSpec


class Backend(Protocol):
    """Where trainings run. `start` returns at once; `report` is called with the job's events as they happen
    (from any thread), ending with exactly one JobEnded or JobFailed."""

    name: str

    @property
    def capacity(self) -> int: ...

    def start(self, spec: JobSpec, report) -> None: ...

    def control(self, job_id: int, network: int, action: str) -> None: ...

    def describe(self) -> str: ...

    def places(self) -> list[tuple[str, int | None]]: ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Place:
    """One training place of the backend: where it is, and the run it trains (None when free)."""

    where: str
    run_id: int | None
    owner: str | None
    networks: int = 0  # networks trained there together (a pack)
    watchers: int = 0  # runs following them


@dataclass(frozen=True)
class ServerLoad:
    """How many trainings this server runs at once, where, and how many wait."""

    backend: str
    capacity: int
    running: int
    waiting: int
    places: tuple[Place, ...]
