"""Applying a backend's events to the networks of a job and the runs that follow them.

A backend reports each job's events as they happen (`mnistlab.worker`: where it runs, its
phase, its plan, each batch and epoch, a Stop honoured, a network's model, a failure, the
end). `apply` updates the networks and their followers in the registry (with its lock held)
and returns what must happen after the lock is released: runs that ended (to write down and
wake), runs whose state changed enough to be written at once, and networks whose training
seconds count for the fair queue. A network's model is written to the first follower's
folder and linked into the others'.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab.following import MODEL_FILE, PREDICTIONS_FILE, LiveRun, Network, Registry, link_or_copy, write_atomically
from mnistlab.i18n import _, ngettext
from mnistlab.runs import CANCELLED, FAILED, FINISHED
from mnistlab.worker import (
    BatchDone,
    EpochDone,
    JobEnded,
    JobEvent,
    JobFailed,
    NetworkDone,
    NetworkFailed,
    PhaseChanged,
    PlanReady,
    Stopped,
    WorkerStarted,
    on_curve,
)

# Events after which the followers' state is written at once (the others: by the keeper, every few seconds).
WRITTEN_AT_ONCE = (PlanReady, EpochDone, PhaseChanged, Stopped, WorkerStarted)


@dataclass
class Applied:
    """What an event changed that must be done outside the lock."""

    ended: list[tuple[LiveRun, str, dict]] = field(default_factory=list)  # (run, status, values for its end)
    to_persist: list[LiveRun] = field(default_factory=list)
    job_over: list[Network] = field(default_factory=list)  # the networks of a job that ended (their seconds count)


def apply(registry: Registry, job_id: int, event: JobEvent, run_folder: Callable[[int], Path]) -> Applied:
    """Apply one event of job `job_id` (called with the registry's lock held)."""
    applied = Applied()
    job = registry.jobs.get(job_id)
    if job is None:
        return applied
    if isinstance(event, WorkerStarted):
        for network in job.networks:
            network.worker = event.where
            for live in registry.followers(network):
                live.worker, live.dirty = event.where, True
    elif isinstance(event, PhaseChanged):
        for network in job.networks if event.network is None else [job.networks[event.network]]:
            network.phase = event.phase
            for live in registry.followers(network):
                if not live.stopping:
                    live.phase, live.dirty = event.phase, True
    elif isinstance(event, (PlanReady, BatchDone, EpochDone, Stopped)):
        progress(registry, job.networks[event.network], event)
    elif isinstance(event, NetworkDone):
        applied.ended += network_done(registry, job.networks[event.network], event, run_folder)
    elif isinstance(event, NetworkFailed):
        applied.ended += _fail(registry, job.networks[event.network], event.reason)
    elif isinstance(event, (JobFailed, JobEnded)):
        reason = event.reason if isinstance(event, JobFailed) else _("The training ended without a result.")
        for network in job.networks:
            applied.ended += _fail(registry, network, reason)
        applied.job_over = list(job.networks)
        del registry.jobs[job_id]
        registry.lock.notify_all()
    if isinstance(event, WRITTEN_AT_ONCE):
        applied.to_persist = [live for network in job.networks for live in registry.followers(network)]
    return applied


def _fail(registry: Registry, network: Network, reason: str) -> list[tuple[LiveRun, str, dict]]:
    """A network that has not ended yet fails, and so do its followers."""
    if network.done:
        return []
    network.done = True
    registry.networks.pop(network.key, None)
    return [(live, FAILED, {"error": reason}) for live in registry.followers(network)]


def progress(registry: Registry, network: Network, event) -> None:
    """A plan, a batch, an epoch or a Stop honoured: kept by the network (for runs that follow it later) and its followers."""
    if isinstance(event, PlanReady):
        # How many networks train in its job: a pack's epochs take the time of all of them (`mnistlab.estimates`).
        network.plan = {**event.plan, "networks_in_job": len(network.job.networks) if network.job else 1}
    elif isinstance(event, BatchDone):
        network.latest = event.progress
        if on_curve(event.progress):
            network.curve.append(event.progress)
    elif isinstance(event, EpochDone):
        network.epochs.append(event.record)
    elif isinstance(event, Stopped):
        network.stopped_at = event.point
    for live in registry.followers(network):
        if isinstance(event, PlanReady):
            live.plan = network.plan
        elif isinstance(event, BatchDone):
            live.latest = event.progress
            if on_curve(event.progress):
                live.curve.append(event.progress)
        elif isinstance(event, EpochDone):
            live.epochs.append(event.record)
        elif isinstance(event, Stopped) and live.stopping:
            live.stopped_at, live.phase = event.point, "stopped: scoring the model"
        live.dirty = True


def network_done(registry: Registry, network: Network, event: NetworkDone, run_folder: Callable[[int], Path]) -> list[tuple[LiveRun, str, dict]]:
    """A network's model arrived: at its end for every follower, or as a snapshot for those who stopped."""
    if event.final:
        receivers = registry.followers(network)
        network.done = True
        registry.networks.pop(network.key, None)
    else:
        receivers = [registry.live[run] for run in network.snapshot_for if run in registry.live]
        network.snapshot_for = []
    ended = []
    first_folder = None
    for live in receivers:
        folder = run_folder(live.run_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if first_folder is None:
                write_atomically(folder / MODEL_FILE, event.model_bytes)
                arrays = {"probabilities": event.probabilities, "labels": event.labels}
                if event.test_images is not None:
                    arrays["images"] = event.test_images
                write_atomically(folder / PREDICTIONS_FILE, npz_bytes(arrays))
                first_folder = folder
            else:
                for name in (MODEL_FILE, PREDICTIONS_FILE):
                    link_or_copy(first_folder / name, folder / name)
        except OSError as error:
            reason = _("The trained model could not be saved in {folder}: {error}.").format(folder=folder, error=error.strerror or error)
            ended.append((live, FAILED, {"error": reason}))
            continue
        live.result = event.result
        live.epochs = list(event.result.history)
        status = CANCELLED if event.result.stop_reason == "cancelled" else FINISHED
        note = live.cancel_note
        if not event.final:
            others = len([run for run in network.followers if run != live.run_id])
            note = note or ngettext(
                "You stopped watching: your run keeps the model as it was then. {count} classmate goes on training it.",
                "You stopped watching: your run keeps the model as it was then. {count} classmates go on training it.",
                others,
            ).format(count=others)
            network.followers.remove(live.run_id)
            live.network = None
        ended.append((live, status, {"error": note, "model_path": folder / MODEL_FILE}))
    return ended


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
