"""Following a network: the runs that train one network together, and what the job manager keeps of them in memory.

A run is one student's record; what trains is a `Network`, and runs follow one. Runs whose
settings, seed and data are the same (`training_key`) follow the same network, so 25
students pressing Train on a lesson's step watch one training. A run that starts following
sees what its network has done so far (`follow`); a waiting network nobody follows any more
leaves the queue (`unfollow`); a run identical to one that already finished takes its
result and model files at once (`take_result`).

`Registry` holds the manager's state: every active (or just ended) run (`LiveRun`), the
waiting networks, the networks by training key and the jobs on the backend. Everything here
is called with the registry's lock held.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab.datasets import Dataset
from mnistlab.events import BatchProgress, EpochRecord, StopPoint, TrainingResult
from mnistlab.i18n import _
from mnistlab.packing import can_pack, pack_key
from mnistlab.precision import FLOAT32
from mnistlab.runs import FAILED, FINISHED, QUEUED, RUNNING, RunSnapshot
from mnistlab.scheduling import Waiting
from mnistlab.settings import TrainingSettings
from mnistlab.worker import LabelledImages

MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "test_predictions.npz"


def training_key(settings: TrainingSettings, precision: str, extra_train=None, extra_tests=None, own_data=None) -> str:
    """The same for two runs exactly when they would train the same network: settings, seed, data and precision."""
    digest = hashlib.sha256(json.dumps({"settings": settings.to_dict(), "precision": precision}, sort_keys=True, default=str).encode())
    if own_data is not None:  # a class's own set: its images, labels and categories are the data
        digest.update(json.dumps(list(own_data.class_names)).encode())
        for array in (own_data.x_train, own_data.y_train, own_data.x_test, own_data.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
    if extra_train is not None:
        for array in extra_train:
            digest.update(np.ascontiguousarray(array).tobytes())
    for name in sorted(extra_tests or {}):
        digest.update(name.encode())
        for array in extra_tests[name]:
            digest.update(np.ascontiguousarray(array).tobytes())
    return "t:" + digest.hexdigest()[:40]


@dataclass(eq=False)
class Network:
    """One network to train, and the runs that follow it."""

    key: str
    settings: TrainingSettings
    extra_train: LabelledImages | None
    extra_tests: dict[str, LabelledImages]
    precision: str
    queued_at: float
    followers: list[int] = field(default_factory=list)
    job: Job | None = None
    index: int = 0
    phase: str = "waiting in the queue"
    plan: dict | None = None
    latest: BatchProgress | None = None
    curve: list[BatchProgress] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    worker: str | None = None
    started_at: float | None = None
    stopped_at: StopPoint | None = None
    snapshot_for: list[int] = field(default_factory=list)
    done: bool = False
    own_data: Dataset | None = None  # a set of the class's own, given with the run (not loaded by name)

    @property
    def packable(self) -> bool:
        return can_pack(self.settings) and self.precision == FLOAT32 and self.extra_train is None and not self.extra_tests and self.own_data is None


@dataclass(eq=False)
class Job:
    """Networks training together on one place of the backend."""

    job_id: int
    networks: list[Network]
    started_at: float


@dataclass(eq=False)
class LiveRun:
    """An active (or just ended) run's state in memory."""

    run_id: int
    settings: TrainingSettings
    owner: str
    shared_key: str | None
    training_key: str
    created_at: float
    network: Network | None = None
    status: str = QUEUED
    phase: str = "waiting in the queue"
    plan: dict | None = None
    latest: BatchProgress | None = None
    curve: list[BatchProgress] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    result: TrainingResult | None = None
    error: str | None = None
    model_path: Path | None = None
    worker: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    shared_from: int | None = None
    last_asked: float = field(default_factory=time.monotonic)
    cancel_note: str | None = None
    stopping: bool = False
    stopped_at: StopPoint | None = None
    dirty: bool = False
    unsaved: bool = False
    persisted_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


class Registry:
    """The manager's state, guarded by `lock` (a Condition: the dispatcher waits on it for a place or a network)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.live: dict[int, LiveRun] = {}
        self.waiting: list[Network] = []
        self.networks: dict[str, Network] = {}  # training key -> network waiting or training
        self.jobs: dict[int, Job] = {}

    def followers(self, network: Network) -> list[LiveRun]:
        return [self.live[run] for run in network.followers if run in self.live]

    def waiting_view(self) -> dict[str, tuple[Waiting, Network]]:
        """The waiting networks as the queue's rules see them, by training key."""
        return {
            network.key: (
                Waiting(
                    network.key,
                    tuple(live.owner for live in self.followers(network)),
                    network.queued_at,
                    pack_key(network.settings) if network.packable else None,
                ),
                network,
            )
            for network in self.waiting
        }


def follow(live: LiveRun, network: Network) -> None:
    """`live` follows `network` from now on, and sees what it has done so far."""
    network.followers.append(live.run_id)
    live.network = network
    live.phase, live.plan, live.latest = network.phase, network.plan, network.latest
    live.curve, live.epochs, live.worker = list(network.curve), list(network.epochs), network.worker
    if network.job is not None:
        live.status, live.started_at = RUNNING, network.started_at
    live.dirty = True


def unfollow(registry: Registry, live: LiveRun, network: Network) -> None:
    """`live` no longer follows `network`; a waiting network nobody follows leaves the queue."""
    if live.run_id in network.followers:
        network.followers.remove(live.run_id)
    live.network = None
    if not network.followers and network.job is None and network in registry.waiting:
        registry.waiting.remove(network)
        registry.networks.pop(network.key, None)


def take_result(live: LiveRun, finished: RunSnapshot, folder: Path) -> None:
    """A run identical to one that finished takes its result, curve and model (files in `folder`) at once."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, PREDICTIONS_FILE):
            link_or_copy(finished.model_path.parent / name, folder / name)
    except OSError as error:
        live.status, live.error = FAILED, _("The finished result could not be copied: {error}").format(error=error.strerror or error)
        live.ended_at = time.time()
        live.unsaved = True
        live.done.set()
        return
    live.status, live.phase = FINISHED, FINISHED
    live.plan, live.latest, live.curve, live.epochs = finished.plan, finished.latest_batch, list(finished.curve), list(finished.epochs)
    live.result, live.model_path, live.worker = finished.result, folder / MODEL_FILE, finished.worker
    live.started_at = live.ended_at = time.time()
    live.shared_from = finished.run_id
    live.unsaved = True
    live.done.set()


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_bytes(data)
    temporary.replace(path)


def link_or_copy(source: Path, target: Path) -> None:
    """The same file in another run's folder: a hard link where the disk allows it (no extra space), else a copy."""
    temporary = target.with_name(f".tmp-{target.name}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        temporary.write_bytes(source.read_bytes())
    temporary.replace(target)
