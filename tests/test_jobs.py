"""The job manager: queue order, Stop, failures, abandoned runs, shared runs; with a stand-in backend and with real worker processes."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from mnistlab.database import Database
from mnistlab.events import TrainingResult
from mnistlab.jobs import SERVER_OWNER, JobManager
from mnistlab.process_backend import ProcessBackend
from mnistlab.runs import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, RunStore
from mnistlab.settings import TrainingSettings
from mnistlab.worker import BatchDone, EpochDone, JobFailed, JobSucceeded, PhaseChanged
from tests.helpers import wait_until

SMALL = dict(dataset="mnist", arch="dense", train_size=1000, test_size=200, target_accuracy=None)


def result_for(settings: TrainingSettings, stop_reason: str = "max epochs") -> TrainingResult:
    return TrainingResult(
        dataset=settings.dataset,
        arch=settings.arch,
        epochs_run=1,
        stop_reason=stop_reason,
        target_accuracy=None,
        monitor="val_accuracy",
        target_reached=None,
        train_accuracy=0.5,
        train_loss=1.0,
        val_accuracy=0.5,
        val_loss=1.0,
        test_accuracy=0.5,
        test_loss=1.0,
        seconds=1.0,
        parameters=10,
        data_source="test",
        normalization="divide_255",
    )


class GatedBackend:
    """A stand-in backend: jobs start when the manager says, and end when the test says."""

    name = "gated"

    def __init__(self, capacity: int = 1):
        self.capacity = capacity
        self.started: list[int] = []
        self.reports: dict[int, object] = {}
        self.cancelled: list[int] = []

    def start(self, spec, report):
        self.started.append(spec.run_id)
        self.reports[spec.run_id] = (spec, report)

    def finish(self, run_id: int, stop_reason: str = "max epochs") -> None:
        spec, report = self.reports[run_id]
        report(PhaseChanged("training"))
        report(
            JobSucceeded(result_for(spec.settings, stop_reason), b"model bytes", np.full((2, 10), 0.1, np.float32), np.array([1, 2], np.uint8), None)
        )

    def fail(self, run_id: int, reason: str) -> None:
        self.reports[run_id][1](JobFailed(reason))

    def cancel(self, run_id: int) -> None:
        self.cancelled.append(run_id)
        self.finish(run_id, "cancelled")

    def describe(self) -> str:
        return "gated"

    def places(self):
        return [(f"place {number}", None) for number in range(self.capacity)]

    def shutdown(self) -> None:
        pass


@pytest.fixture
def store(tmp_path):
    return RunStore(Database(f"sqlite:///{tmp_path / 'runs.db'}"), tmp_path)


def manager(store, backend, abandon_after=60.0):
    return JobManager(store, backend, "test-server", abandon_after=abandon_after)


def test_queue_runs_first_come_and_reports_places(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    ids = [jobs.submit(TrainingSettings(seed=seed), "browser:a") for seed in (1, 2, 3)]
    assert wait_until(lambda: backend.started == ids[:1], 5)
    assert [jobs.position(run_id) for run_id in ids] == [None, 1, 2]
    assert jobs.snapshot(ids[1]).status == QUEUED and jobs.running == 1 and jobs.waiting == 2
    backend.finish(ids[0])
    assert jobs.wait(ids[0], 5) and jobs.snapshot(ids[0]).status == FINISHED
    assert wait_until(lambda: backend.started == ids[:2], 5)
    assert jobs.snapshot(ids[2]).queue_position == 1
    backend.finish(ids[1])
    assert wait_until(lambda: backend.started == ids, 5)
    # Finished runs are in the database, with the model file in the run's folder.
    stored = store.get(ids[0])
    assert stored.status == FINISHED and stored.model_path.read_bytes() == b"model bytes"
    assert (stored.model_path.parent / "test_predictions.npz").is_file()


def test_two_places_run_two_at_once_in_order(store):
    backend = GatedBackend(capacity=2)
    jobs = manager(store, backend)
    ids = [jobs.submit(TrainingSettings(seed=seed), "browser:a") for seed in (1, 2, 3)]
    assert wait_until(lambda: backend.started == ids[:2], 5)
    assert jobs.position(ids[2]) == 1
    backend.finish(ids[1])
    assert wait_until(lambda: backend.started == ids, 5)


def test_cancel_a_waiting_run_leaves_the_queue(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first, second, third = (jobs.submit(TrainingSettings(seed=seed), "browser:a") for seed in (1, 2, 3))
    assert wait_until(lambda: backend.started == [first], 5)
    assert jobs.cancel(second, owner="browser:a")
    assert jobs.snapshot(second).status == CANCELLED and store.get(second).status == CANCELLED
    assert jobs.position(third) == 1
    backend.finish(first)
    assert wait_until(lambda: backend.started == [first, third], 5)


def test_only_the_owner_can_stop_or_see_a_run(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    run_id = jobs.submit(TrainingSettings(), "browser:a")
    assert not jobs.cancel(run_id, owner="browser:b")
    assert jobs.snapshot(run_id, owner="browser:b") is None
    assert jobs.snapshot(run_id, owner="browser:a") is not None


def test_a_failed_run_gives_its_place_back(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first, second = (jobs.submit(TrainingSettings(seed=seed), "browser:a") for seed in (1, 2))
    assert wait_until(lambda: backend.started == [first], 5)
    backend.fail(first, "impossible settings (test)")
    assert jobs.wait(first, 5)
    assert jobs.snapshot(first).status == FAILED and jobs.snapshot(first).error == "impossible settings (test)"
    assert wait_until(lambda: backend.started == [first, second], 5)


def test_a_run_nobody_asks_about_is_cancelled_and_the_queue_moves_on(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend, abandon_after=2.0)
    abandoned = jobs.submit(TrainingSettings(seed=1), "browser:gone")
    watched = jobs.submit(TrainingSettings(seed=2), "browser:here")
    shared = jobs.submit(TrainingSettings(seed=3), SERVER_OWNER)
    assert wait_until(lambda: backend.started == [abandoned], 5)
    deadline = time.monotonic() + 8
    # Read the abandoned run from the database: asking the manager would count as watching it.
    while time.monotonic() < deadline and store.get(abandoned).status != CANCELLED:
        jobs.snapshot(watched)  # The second browser keeps asking about its run.
        time.sleep(0.2)
    ended = store.get(abandoned)
    assert ended.status == CANCELLED and "no page asked about it" in ended.error
    assert wait_until(lambda: backend.started == [abandoned, watched], 5)
    assert jobs.snapshot(watched).status == RUNNING
    # A run owned by the server (a shared quick model) is never abandoned, though nobody asks about it.
    time.sleep(4)
    assert store.get(shared).status in (QUEUED, RUNNING)


def test_everyone_shares_one_run_of_a_shared_recipe(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    settings = TrainingSettings(dataset="mnist", arch="fast_cnn", target_accuracy=None)
    runs = {jobs.shared_run("quick:mnist", settings) for _ in range(25)}
    assert len(runs) == 1
    (run_id,) = runs
    assert wait_until(lambda: backend.started == [run_id], 5)
    backend.finish(run_id)
    assert jobs.wait(run_id, 5)
    # Once it is done, asking again gives the finished run at once.
    assert jobs.shared_run("quick:mnist", settings) == run_id
    assert backend.started == [run_id]


def test_a_restart_keeps_finished_runs_and_marks_cut_off_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = RunStore(Database(url), tmp_path)
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    done, cut_off, waiting = (jobs.submit(TrainingSettings(seed=seed), "browser:a") for seed in (1, 2, 3))
    assert wait_until(lambda: backend.started == [done], 5)
    backend.finish(done)
    assert wait_until(lambda: backend.started == [done, cut_off], 5)
    _spec, report = backend.reports[cut_off]
    from mnistlab.events import BatchProgress, EpochRecord

    report(EpochDone(EpochRecord(1, 0.9, 0.7, 0.8, 0.72, 3.0, 3.0)))
    report(BatchDone(BatchProgress(2, 10, 20, 5, 0.5, 0.8, 4.0)))
    jobs._persist(jobs._live[cut_off])  # What the keeper thread does every few seconds.
    jobs.shutdown()

    # A new server process on the same database file.
    restarted = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "test-server")
    assert sorted(restarted.interrupted_at_start) == [cut_off, waiting]
    finished = restarted.snapshot(done)
    assert finished.status == FINISHED and finished.model_path.is_file() and finished.result.test_accuracy == 0.5
    interrupted = restarted.snapshot(cut_off)
    assert interrupted.status == "interrupted" and "restarted" in interrupted.error
    assert [record.epoch for record in interrupted.epochs] == [1] and interrupted.latest_batch.batch == 10


# Real worker processes


# Real backends: worker processes on this machine, and a real local Ray cluster the test process joins as a
# client (as the web server joins a lab's cluster). Each has two training places; every test below runs on both.


@pytest.fixture(scope="module", params=["process", "ray"])
def real_jobs(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"real-jobs-{request.param}")
    if request.param == "ray":
        cluster = request.getfixturevalue("ray_cluster")  # First: Ray reads its token from the environment when imported.
        from mnistlab.ray_backend import RayBackend

        backend = RayBackend(cluster.address, cpus_per_training=2, nice=5)
        assert backend.wait_until_ready(places=2, timeout=180), "the Ray cluster did not start its training actors"
    else:
        backend = ProcessBackend(workers=2, nice=5)
    jobs = JobManager(RunStore(Database(f"sqlite:///{folder / 'runs.db'}"), folder), backend, f"test-{request.param}")
    yield jobs
    jobs.shutdown()


def pid_of(snapshot) -> int:
    """The process id in a run's "where it trains" ("process 1234 on host", or "Ray, process 1234 on host")."""
    words = snapshot.worker.split()
    return int(words[words.index("process") + 1])


def test_a_worker_trains_and_reports_progress_as_it_goes(real_jobs):
    settings = TrainingSettings(**{**SMALL, "train_size": 3000}, max_epochs=3, batch_size=10)
    run_id = real_jobs.submit(settings, "browser:a")
    seen_batches = []
    while not real_jobs.wait(run_id, 0.05):
        latest = real_jobs.snapshot(run_id).latest_batch
        if latest is not None and (not seen_batches or seen_batches[-1] != (latest.epoch, latest.batch)):
            seen_batches.append((latest.epoch, latest.batch))
    snapshot = real_jobs.snapshot(run_id)
    assert snapshot.status == FINISHED, snapshot.error
    # Progress arrived while training, not all at the end.
    assert len(seen_batches) >= 3 and seen_batches[0] < seen_batches[-1]
    assert [record.epoch for record in snapshot.epochs] == [1, 2, 3]
    assert snapshot.result.epochs_run == 3 and 0.5 < snapshot.result.test_accuracy <= 1.0
    # It trained in another process, which says where it was.
    assert pid_of(snapshot) in real_jobs.backend.worker_pids() and pid_of(snapshot) != os.getpid()
    from mnistlab.store import load_model_file

    assert load_model_file(snapshot.model_path).count_params() == snapshot.result.parameters


def test_stop_ends_training_within_a_second_and_keeps_the_model(real_jobs):
    run_id = real_jobs.submit(TrainingSettings(**{**SMALL, "train_size": None}, max_epochs=200, batch_size=32), "browser:a")
    assert wait_until(lambda: real_jobs.snapshot(run_id).latest_batch is not None, 60)
    before = real_jobs.snapshot(run_id).latest_batch
    pressed = time.monotonic()
    assert real_jobs.cancel(run_id, owner="browser:a")
    assert wait_until(lambda: real_jobs.snapshot(run_id).phase in ("evaluating", "saving", CANCELLED), 5)
    assert time.monotonic() - pressed < 1.0 + 0.5  # 0.5 s of polling slack on top of the 1 s promise
    assert real_jobs.wait(run_id, 60)
    snapshot = real_jobs.snapshot(run_id)
    assert snapshot.status == CANCELLED and snapshot.has_model and snapshot.model_path.is_file()
    stopped = snapshot.result.stopped_at
    assert snapshot.result.stop_reason == "cancelled" and stopped.epoch < 200
    assert (stopped.epoch, stopped.batch) >= (before.epoch, before.batch)
    assert "Stopped by you at batch" in snapshot.result.describe_stop()


def test_a_killed_worker_fails_its_run_quickly_and_the_next_run_starts(real_jobs):
    long_run = real_jobs.submit(TrainingSettings(**{**SMALL, "train_size": None}, max_epochs=200), "browser:a")
    next_run = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1), "browser:b")
    assert wait_until(lambda: real_jobs.snapshot(long_run).latest_batch is not None, 60)
    os.kill(pid_of(real_jobs.snapshot(long_run)), 9)
    killed = time.monotonic()
    assert wait_until(lambda: real_jobs.snapshot(long_run).status == FAILED, 5)
    assert time.monotonic() - killed < 5
    reason = real_jobs.snapshot(long_run).error
    assert ("killed" in reason or "switched off or its training process stopped" in reason) and "\n" not in reason
    assert real_jobs.wait(next_run, 120) and real_jobs.snapshot(next_run).status == FINISHED
    # The backend gets its place back (a new worker process, or a new actor), and it trains.
    assert wait_until(lambda: real_jobs.backend.capacity == 2, 120), real_jobs.load()
    again = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1), "browser:b")
    assert real_jobs.wait(again, 120) and real_jobs.snapshot(again).status == FINISHED


def test_an_error_in_a_worker_fails_only_that_run(real_jobs):
    bad = real_jobs.submit(TrainingSettings(**SMALL, data_dir="/nonexistent-data-dir"), "browser:a")
    assert real_jobs.wait(bad, 60)
    snapshot = real_jobs.snapshot(bad)
    assert snapshot.status == FAILED and "does not exist" in snapshot.error
    good = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1), "browser:a")
    assert real_jobs.wait(good, 60) and real_jobs.snapshot(good).status == FINISHED


def test_two_places_train_two_runs_at_once_in_queue_order(real_jobs):
    jobs = real_jobs
    ids = [jobs.submit(TrainingSettings(**SMALL, max_epochs=40, seed=seed), "browser:a") for seed in (1, 2, 3)]
    assert wait_until(lambda: jobs.snapshot(ids[0]).status == RUNNING and jobs.snapshot(ids[1]).status == RUNNING, 60)
    assert jobs.snapshot(ids[2]).queue_position == 1
    assert wait_until(lambda: None not in {jobs.snapshot(run_id).worker for run_id in ids[:2]}, 30)
    workers = {jobs.snapshot(run_id).worker for run_id in ids[:2]}
    assert len(workers) == 2  # Two different processes.
    for run_id in ids[:2]:
        jobs.cancel(run_id)
    assert jobs.wait(ids[2], 120)
    started = [jobs.snapshot(run_id).started_at for run_id in ids]
    assert started[2] >= max(started[:2])
    # The server's load panel says where each place is and what it trains.
    load = jobs.load()
    assert load.capacity == 2 and len(load.places) == 2


def test_workers_run_at_a_lower_priority(real_jobs):
    pid = real_jobs.backend.worker_pids()[0]
    assert wait_until(lambda: os.getpriority(os.PRIO_PROCESS, pid) > os.getpriority(os.PRIO_PROCESS, 0), 10)


def test_threads_do_not_leak_between_jobs(real_jobs):
    before = threading.active_count()
    run_id = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1), "browser:a")
    assert real_jobs.wait(run_id, 60)
    assert threading.active_count() <= before + 1


def test_a_run_cut_off_by_a_restart_is_found_interrupted_with_its_progress(real_jobs):
    run_id = real_jobs.submit(TrainingSettings(**{**SMALL, "train_size": 2000}, max_epochs=200, batch_size=50), "browser:a")
    # The epochs so far reach the database as they end (the keeper writes them every few seconds).
    assert wait_until(lambda: len(real_jobs.store.get(run_id).epochs) >= 1, 120), (real_jobs.snapshot(run_id), real_jobs.load())
    # The server process dies here; a new one opens the same database, as after a restart.
    restarted = JobManager(RunStore(Database(real_jobs.store.database.url), real_jobs.store.data_home), GatedBackend(), real_jobs.server_id)
    try:
        assert run_id in restarted.interrupted_at_start
        snapshot = restarted.snapshot(run_id)
        assert snapshot.status == "interrupted" and snapshot.epochs and snapshot.epochs[0].epoch == 1
    finally:
        restarted.shutdown()
        real_jobs.cancel(run_id)
        assert real_jobs.wait(run_id, 60)


def test_an_idle_place_that_dies_is_replaced_before_a_run_is_sent_to_it(real_jobs):
    """A PC switched off while idle (or a worker killed between runs) costs no student a run."""
    assert wait_until(lambda: real_jobs.backend.capacity == 2, 120)
    victim = real_jobs.backend.worker_pids()[0]
    os.kill(victim, 9)
    assert wait_until(lambda: victim not in real_jobs.backend.worker_pids() and real_jobs.backend.capacity == 2, 120), real_jobs.load()
    runs = [real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1, seed=seed), "browser:c") for seed in (1, 2)]
    for run_id in runs:
        assert real_jobs.wait(run_id, 120) and real_jobs.snapshot(run_id).status == FINISHED, real_jobs.snapshot(run_id).error
