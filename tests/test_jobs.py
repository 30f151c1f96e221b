"""The job manager: shared trainings, packs, the fair queue, limits, Stop, failures, a busy database, replicas;
with a stand-in backend and with real worker processes and a real Ray cluster."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import numpy as np
import pytest

from mnistlab.database import Database
from mnistlab.events import BatchProgress, EpochRecord, TrainingResult
from mnistlab.jobs import SERVER_OWNER, JobManager, OneRunAtATimeError
from mnistlab.models import parse_network
from mnistlab.process_backend import ProcessBackend
from mnistlab.runs import CANCELLED, FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, RunStore
from mnistlab.settings import TrainingSettings
from mnistlab.worker import SNAPSHOT, STOP, BatchDone, EpochDone, JobEnded, LabelledImages, NetworkDone, NetworkFailed, PhaseChanged, Stopped
from tests.drivers import wait_until

SMALL = dict(dataset="mnist", arch="dense", train_size=1000, test_size=200, target_accuracy=None)
CNN = dict(dataset="mnist", arch="cnn", target_accuracy=None)  # convolutional: never packed, never waits to gather


def result_for(settings: TrainingSettings, stop_reason: str = "max epochs", accuracy: float = 0.5) -> TrainingResult:
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
        test_accuracy=accuracy,
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
        self.specs: dict[int, object] = {}
        self.reports: dict[int, object] = {}
        self.controls: list[tuple[int, int, str]] = []

    def start(self, spec, report):
        self.started.append(spec.job_id)
        self.specs[spec.job_id] = spec
        self.reports[spec.job_id] = report

    def done(self, job_id: int, network: int = 0, stop_reason: str = "max epochs", final: bool = True, accuracy: float = 0.5) -> None:
        spec, report = self.specs[job_id], self.reports[job_id]
        probabilities = np.full((2, 10), 0.1, np.float32)
        result = result_for(spec.networks[network], stop_reason, accuracy)
        report(NetworkDone(result, b"model bytes", probabilities, np.array([1, 2], np.uint8), None, network, final))

    def finish(self, job_id: int, stop_reason: str = "max epochs", accuracy: float = 0.5) -> None:
        self.reports[job_id](PhaseChanged("training"))
        for network in range(len(self.specs[job_id].networks)):
            self.done(job_id, network, stop_reason, accuracy=accuracy)
        self.reports[job_id](JobEnded())

    def fail(self, job_id: int, reason: str) -> None:
        self.reports[job_id](NetworkFailed(reason, 0))
        self.reports[job_id](JobEnded())

    def control(self, job_id: int, network: int, action: str) -> None:
        self.controls.append((job_id, network, action))
        if action == STOP:
            self.reports[job_id](Stopped(None, network))
            self.done(job_id, network, "cancelled")
            if len(self.specs[job_id].networks) == 1:
                self.reports[job_id](JobEnded())

    def describe(self) -> str:
        return "gated"

    def places(self):
        return [(f"place {number}", None) for number in range(self.capacity)]

    def shutdown(self) -> None:
        pass


@pytest.fixture
def store(database_url, tmp_path):
    """Runs on a fresh database: the stand-in backend's tests run on SQLite and on a real PostgreSQL."""
    return RunStore(Database(database_url), tmp_path)


def manager(store, backend, abandon_after=60.0, **keywords):
    return JobManager(store, backend, "test-server", abandon_after=abandon_after, **keywords)


def job_of(jobs: JobManager, run_id: int) -> int | None:
    """The job a run's network trains in (None while it waits)."""
    with jobs._lock:
        live = jobs._live.get(run_id)
        return live.network.job.job_id if live is not None and live.network is not None and live.network.job is not None else None


def test_queue_runs_in_order_and_reports_places(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    ids = [jobs.submit(TrainingSettings(**CNN, seed=seed), f"browser:{seed}") for seed in (1, 2, 3)]
    assert wait_until(lambda: len(backend.started) == 1 and job_of(jobs, ids[0]) == backend.started[0], 5)
    assert [jobs.position(run_id) for run_id in ids] == [None, 1, 2]
    assert jobs.snapshot(ids[1]).status == QUEUED and jobs.running == 1 and jobs.waiting == 2
    backend.finish(backend.started[0])
    assert jobs.wait(ids[0], 5) and jobs.snapshot(ids[0]).status == FINISHED
    assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, ids[1]) == backend.started[1]
    assert jobs.snapshot(ids[2]).queue_position == 1
    backend.finish(backend.started[1])
    assert wait_until(lambda: len(backend.started) == 3, 5)
    # Finished runs are in the database, with the model file in the run's folder.
    stored = store.get(ids[0])
    assert stored.status == FINISHED and stored.model_path.read_bytes() == b"model bytes"
    assert (stored.model_path.parent / "test_predictions.npz").is_file()


def test_a_student_has_one_active_run_at_a_time(store):
    jobs = manager(store, GatedBackend(capacity=1))
    first = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:a")
    with pytest.raises(OneRunAtATimeError, match=rf"You already have a training waiting or running \(run {first}\)"):
        jobs.submit(TrainingSettings(**CNN, seed=2), "browser:a")
    jobs.cancel(first, owner="browser:a")
    assert jobs.snapshot(jobs.submit(TrainingSettings(**CNN, seed=2), "browser:a")).status in (QUEUED, RUNNING)


def test_a_class_pressing_train_with_the_same_settings_shares_one_training(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    settings = TrainingSettings(**CNN)
    ids = [jobs.submit(settings, f"browser:{number}") for number in range(25)]
    assert wait_until(lambda: len(backend.started) == 1, 5)
    assert len(backend.specs[backend.started[0]].networks) == 1  # one network for 25 runs
    assert all(job_of(jobs, run_id) == backend.started[0] for run_id in ids)
    snapshot = jobs.snapshot(ids[7])
    assert snapshot.status == RUNNING and snapshot.watchers == 25
    report = backend.reports[backend.started[0]]
    report(EpochDone(EpochRecord(1, 0.9, 0.7, 0.8, 0.72, 3.0, 3.0)))
    # A classmate who presses Train now sees the progress so far.
    late = jobs.submit(settings, "browser:late")
    assert [record.epoch for record in jobs.snapshot(late).epochs] == [1] and jobs.snapshot(late).watchers == 26
    backend.finish(backend.started[0], accuracy=0.875)
    for run_id in [*ids, late]:
        assert jobs.wait(run_id, 5)
        finished = store.get(run_id)
        assert finished.status == FINISHED and finished.result.test_accuracy == 0.875
        assert finished.owner != "server" and finished.model_path.parent.name == str(run_id) and finished.model_path.read_bytes() == b"model bytes"
    assert len(backend.started) == 1


def test_the_same_settings_as_a_finished_run_give_its_result_at_once_and_a_new_seed_trains_again(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    settings = TrainingSettings(**CNN)
    first = jobs.submit(settings, "browser:a")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    backend.finish(backend.started[0], accuracy=0.91)
    assert jobs.wait(first, 5)
    again = jobs.submit(settings, "browser:b")
    snapshot = jobs.snapshot(again)
    assert snapshot.status == FINISHED and snapshot.shared_from == first and snapshot.result.test_accuracy == 0.91
    assert snapshot.model_path.is_file() and snapshot.model_path != store.get(first).model_path
    assert store.get(again).shared_from == first
    assert len(backend.started) == 1  # nothing trained again
    own = jobs.submit(TrainingSettings(**CNN, seed=7), "browser:b")
    assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, own) == backend.started[1]


def test_the_next_place_goes_to_who_has_trained_least_then_who_waited_longest(store):
    # browser:busy trained for 10 minutes today; browser:fresh has not trained yet.
    busy_run = store.create("browser:busy", TrainingSettings(**CNN, seed=99), "old-server")
    with store.database.engine.begin() as connection:
        from mnistlab.database import runs

        now = time.time()
        connection.execute(runs.update().where(runs.c.id == busy_run).values(status=FINISHED, started_at=now - 700, ended_at=now - 100))
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    blocker = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:first")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    busy = jobs.submit(TrainingSettings(**CNN, seed=2), "browser:busy")
    fresh = jobs.submit(TrainingSettings(**CNN, seed=3), "browser:fresh")
    late = jobs.submit(TrainingSettings(**CNN, seed=4), "browser:late")
    assert [jobs.position(run) for run in (fresh, late, busy)] == [1, 2, 3]
    backend.finish(backend.started[0])
    assert jobs.wait(blocker, 5)
    assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, fresh) == backend.started[1]


def test_a_waiting_run_knows_its_place_and_an_honest_wait_from_this_servers_own_times(store):
    settings = TrainingSettings(**CNN, seed=5)
    from mnistlab.database import runs

    for seconds in (38.0, 40.0, 42.0):  # this server trained the same preset on the same data before
        run_id = store.create("browser:old", settings, "old-server")
        with store.database.engine.begin() as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(status=FINISHED, started_at=1000.0, ended_at=1000.0 + seconds))
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first = jobs.submit(TrainingSettings(**CNN, seed=6), "browser:a")
    assert wait_until(lambda: job_of(jobs, first) is not None, 5)
    second = jobs.submit(TrainingSettings(**CNN, seed=7), "browser:b")
    third = jobs.submit(TrainingSettings(**CNN, seed=8), "browser:c")
    assert jobs.estimated_seconds(settings) == 40.0
    wait_second, wait_third = jobs.snapshot(second).wait_seconds, jobs.snapshot(third).wait_seconds
    assert 30 <= wait_second <= 41 and 70 <= wait_third <= 81 and jobs.snapshot(third).queue_position == 2


def test_a_network_over_the_servers_limits_is_refused_before_it_is_queued(store):
    jobs = manager(store, GatedBackend(capacity=1))
    huge = TrainingSettings(dataset="fashion_mnist", arch="custom", model_config=parse_network("dense4096,dense4096,dense4096,dense4096"))
    with pytest.raises(ValueError, match="this server trains at most 3,000,000"):
        jobs.submit(huge, "browser:a")
    assert store.for_owner("browser:a") == []


def test_dense_networks_that_read_the_same_batches_train_in_one_pack(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    variations = [
        TrainingSettings(**SMALL, learning_rate=0.003),
        TrainingSettings(**{**SMALL, "arch": "custom"}, model_config=parse_network("dense64"), batch_size=32),
        TrainingSettings(**SMALL, max_epochs=9),
    ]
    ids = [jobs.submit(settings, f"browser:{number}") for number, settings in enumerate(variations)]
    other_seed = jobs.submit(TrainingSettings(**SMALL, seed=1), "browser:other")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    job_id = backend.started[0]
    assert len(backend.specs[job_id].networks) == 3 and all(job_of(jobs, run) == job_id for run in ids)
    assert jobs.snapshot(other_seed).status == QUEUED  # another seed reads other batches
    report = backend.reports[job_id]
    report(BatchDone(BatchProgress(1, 10, 32, 5, 0.5, 0.8, 1.0), network=1))
    assert jobs.snapshot(ids[1]).latest_batch.batch == 10 and jobs.snapshot(ids[0]).latest_batch is None
    backend.done(job_id, 1, accuracy=0.8)  # the second network reached its target and left the pack
    assert jobs.wait(ids[1], 5) and jobs.snapshot(ids[1]).result.test_accuracy == 0.8
    assert jobs.snapshot(ids[0]).status == RUNNING
    backend.done(job_id, 0, accuracy=0.7)
    backend.done(job_id, 2, accuracy=0.9)
    backend.reports[job_id](JobEnded())
    assert [store.get(run).result.test_accuracy for run in ids] == [0.7, 0.8, 0.9]
    assert wait_until(lambda: len(backend.started) == 2, 5)
    # A dense network alone trains with the pack engine too: its result never depends on who trained with it.
    assert backend.specs[job_id].packed and backend.specs[backend.started[1]].packed


def test_a_runs_plan_says_how_many_networks_trained_in_its_job(store):
    """A pack's epochs take the time of all its networks: the speed estimates leave such runs out (mnistlab.estimates)."""
    from mnistlab.worker import PlanReady

    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    rates = (0.001, 0.002, 0.003)
    ids = [jobs.submit(TrainingSettings(**SMALL, learning_rate=rate), f"browser:{rate}") for rate in rates]
    assert wait_until(lambda: len(backend.started) == 1, 5) and len(backend.specs[backend.started[0]].networks) == 3
    alone = jobs.submit(TrainingSettings(**CNN), "browser:cnn")
    backend.reports[backend.started[0]](PlanReady({"train_images": 1000, "batch_size": 32}, network=1))
    assert jobs.snapshot(ids[1]).plan == {"train_images": 1000, "batch_size": 32, "networks_in_job": 3}
    backend.finish(backend.started[0])
    assert wait_until(lambda: len(backend.started) == 2, 5)
    backend.reports[backend.started[1]](PlanReady({"train_images": 1000, "batch_size": 32}))
    assert jobs.snapshot(alone).plan["networks_in_job"] == 1
    assert store.get(alone).plan["networks_in_job"] == 1  # written at once, as every plan is


def test_networks_that_will_train_in_one_pack_share_one_place_in_the_queue(store, monkeypatch):
    from mnistlab import jobs as jobs_module

    monkeypatch.setattr(jobs_module, "GATHER_SECONDS", 3600.0)  # classmates keep pressing Train: no dense network starts here
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first = jobs.submit(TrainingSettings(**SMALL, learning_rate=0.003), "browser:a")
    # The place is free: this run waits only for classmates pressing Train in the same moment, not in a queue.
    assert jobs.snapshot(first).gathering and jobs.snapshot(first).queue_position == 1
    cnn = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:cnn")  # a CNN never waits to gather: it takes the place
    assert wait_until(lambda: len(backend.started) == 1 and job_of(jobs, cnn) == backend.started[0], 5)
    second = jobs.submit(TrainingSettings(**SMALL, max_epochs=3), "browser:b")
    third = jobs.submit(TrainingSettings(**{**SMALL, "arch": "custom"}, model_config=parse_network("dense64"), batch_size=32), "browser:c")
    other_seed = jobs.submit(TrainingSettings(**SMALL, seed=1), "browser:d")  # other batches: another pack
    last = jobs.submit(TrainingSettings(**CNN, seed=2), "browser:e")
    assert [jobs.position(run) for run in (first, second, third, other_seed, last)] == [1, 1, 1, 2, 3]
    snapshots = [jobs.snapshot(run) for run in (first, second, third, other_seed, last)]
    assert not any(snapshot.gathering for snapshot in snapshots)  # no place is free
    waits = [snapshot.wait_seconds for snapshot in snapshots]
    assert max(waits[:3]) - min(waits[:3]) < 1  # one pack: one wait (read a moment apart)
    assert waits[3] > waits[0] + 1


def test_only_dense_networks_without_class_drawings_go_to_the_pack_engine(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    cnn = jobs.submit(TrainingSettings(**CNN, max_epochs=1), "browser:cnn")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    assert not backend.specs[backend.started[0]].packed
    backend.finish(backend.started[0])
    drawings: LabelledImages = (np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.int64))
    with_drawings = jobs.submit(TrainingSettings(**SMALL), "browser:drawings", extra_train=drawings)
    assert wait_until(lambda: len(backend.started) == 2, 5)
    assert not backend.specs[backend.started[1]].packed
    backend.finish(backend.started[1])
    assert jobs.wait(cnn, 5) and jobs.wait(with_drawings, 5)


def test_stop_from_one_of_several_watchers_hands_them_the_model_and_the_training_goes_on(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    settings = TrainingSettings(**CNN)
    leaving, staying = jobs.submit(settings, "browser:a"), jobs.submit(settings, "browser:b")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    job_id = backend.started[0]
    assert jobs.cancel(leaving, owner="browser:a")
    assert backend.controls == [(job_id, 0, SNAPSHOT)] and jobs.snapshot(leaving).stopping
    backend.done(job_id, 0, "cancelled", final=False, accuracy=0.6)  # the worker's snapshot
    assert jobs.wait(leaving, 5)
    left = jobs.snapshot(leaving)
    assert left.status == CANCELLED and left.model_path.is_file() and "1 classmate goes on training it" in left.error
    assert jobs.snapshot(staying).status == RUNNING and jobs.snapshot(staying).watchers == 1
    # The last watcher's Stop stops the training itself.
    assert jobs.cancel(staying, owner="browser:b")
    assert backend.controls[-1] == (job_id, 0, STOP)
    assert jobs.wait(staying, 5) and jobs.snapshot(staying).status == CANCELLED


def test_cancel_a_waiting_run_leaves_the_queue(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    _first, second, third = (jobs.submit(TrainingSettings(**CNN, seed=seed), f"browser:{seed}") for seed in (1, 2, 3))
    assert wait_until(lambda: len(backend.started) == 1, 5)
    assert jobs.cancel(second, owner="browser:2")
    assert jobs.snapshot(second).status == CANCELLED and store.get(second).status == CANCELLED
    assert jobs.position(third) == 1
    backend.finish(backend.started[0])
    assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, third) == backend.started[1]


def test_only_the_owner_can_stop_or_see_a_run(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    run_id = jobs.submit(TrainingSettings(**CNN), "browser:a")
    assert not jobs.cancel(run_id, owner="browser:b")
    assert jobs.snapshot(run_id, owner="browser:b") is None
    assert jobs.snapshot(run_id, owner="browser:a") is not None


def test_a_failed_run_gives_its_place_back(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first, second = (jobs.submit(TrainingSettings(**CNN, seed=seed), f"browser:{seed}") for seed in (1, 2))
    assert wait_until(lambda: len(backend.started) == 1, 5)
    backend.fail(backend.started[0], "impossible settings (test)")
    assert jobs.wait(first, 5)
    assert jobs.snapshot(first).status == FAILED and jobs.snapshot(first).error == "impossible settings (test)"
    assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, second) == backend.started[1]


@pytest.mark.slow
def test_a_run_nobody_asks_about_is_cancelled_and_the_queue_moves_on(store):
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend, abandon_after=2.0)
    abandoned = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:gone")
    watched = jobs.submit(TrainingSettings(**CNN, seed=2), "browser:here")
    shared = jobs.submit(TrainingSettings(**CNN, seed=3), SERVER_OWNER)
    assert wait_until(lambda: len(backend.started) == 1, 5)
    deadline = time.monotonic() + 8
    # Read the abandoned run from the database: asking the manager would count as watching it.
    while time.monotonic() < deadline and store.get(abandoned).status != CANCELLED:
        jobs.snapshot(watched)  # The second browser keeps asking about its run.
        time.sleep(0.2)
    ended = store.get(abandoned)
    assert ended.status == CANCELLED and "no page asked about it" in ended.error
    assert wait_until(lambda: len(backend.started) == 2 and jobs.snapshot(watched).status == RUNNING, 5)
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
    assert wait_until(lambda: len(backend.started) == 1, 5)
    backend.finish(backend.started[0])
    assert jobs.wait(run_id, 5)
    # Once it is done, asking again gives the finished run at once.
    assert jobs.shared_run("quick:mnist", settings) == run_id
    assert len(backend.started) == 1


def test_a_run_whose_owner_has_a_page_open_is_never_abandoned_however_long_its_page_takes_to_ask(store):
    """Issue 35: 3 of 30 students with open tabs lost their runs as "abandoned": under load their pages' reruns fell
    more than a minute behind. Now a run is abandoned only when its owner also has no page open."""
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend, abandon_after=2.0)
    jobs.page_open = lambda owner: owner == "browser:open"
    slow_page = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:open")
    closed_tab = jobs.submit(TrainingSettings(**CNN, seed=2), "browser:closed")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    # Neither page asks; the closed tab's run goes (the condition), and the open tab's run stays.
    assert wait_until(lambda: store.get(closed_tab).status == CANCELLED, 15)
    assert store.get(slow_page).status == RUNNING and jobs.snapshot(slow_page).status == RUNNING


def test_a_stopped_server_marks_its_cut_off_runs_and_a_restart_keeps_finished_ones(database_url, tmp_path):
    url = database_url
    store = RunStore(Database(url), tmp_path)
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    done, cut_off, waiting = (jobs.submit(TrainingSettings(**CNN, seed=seed), f"browser:{seed}") for seed in (1, 2, 3))
    assert wait_until(lambda: len(backend.started) == 1, 5)
    backend.finish(backend.started[0])
    assert wait_until(lambda: len(backend.started) == 2, 5)
    report = backend.reports[backend.started[1]]
    report(EpochDone(EpochRecord(1, 0.9, 0.7, 0.8, 0.72, 3.0, 3.0)))
    report(BatchDone(BatchProgress(2, 10, 20, 5, 0.5, 0.8, 4.0)))
    jobs._persist(jobs._live[cut_off])  # What the keeper thread does every few seconds.
    jobs.shutdown()

    # A new server process on the same database file.
    restarted = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "test-server")
    finished = restarted.snapshot(done)
    assert finished.status == FINISHED and finished.model_path.is_file() and finished.result.test_accuracy == 0.5
    for run in (cut_off, waiting):
        assert restarted.snapshot(run).status == INTERRUPTED and "server stopped" in restarted.snapshot(run).error
    interrupted = restarted.snapshot(cut_off)
    assert [record.epoch for record in interrupted.epochs] == [1] and interrupted.latest_batch.batch == 10
    restarted.shutdown()


def test_a_server_that_died_has_its_runs_interrupted_but_a_live_replica_never_does(database_url, tmp_path):
    """Two servers on one data home and database (replicas): opening B never marks A's live run interrupted."""
    url = database_url
    a = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "replica")
    live_run = a.submit(TrainingSettings(**CNN), "browser:a")
    assert wait_until(lambda: a.snapshot(live_run).status == RUNNING, 5)
    b = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "replica")
    assert live_run not in b.interrupted_at_start and b.store.get(live_run).status in (QUEUED, RUNNING)
    # A dies without stopping (kill -9): its process is gone; the next server to start marks its runs.
    c = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "replica", environ=None)
    assert live_run not in c.interrupted_at_start
    from mnistlab.database import servers

    with a.store.database.engine.begin() as connection:
        connection.execute(servers.update().where(servers.c.id == a.server_id).values(pid=2**22 + 7))  # no such process
    d = JobManager(RunStore(Database(url), tmp_path), GatedBackend(), "replica")
    assert live_run in d.interrupted_at_start and d.store.get(live_run).status == INTERRUPTED
    for server in (b, c, d):
        server.shutdown()


def silence(jobs: JobManager) -> None:
    """The server stops as a killed one does: no more heartbeats or writes, and nothing marked on its way out."""
    with jobs._lock:
        jobs._stopping = jobs._keeping.stopping = True
        jobs._lock.notify_all()


@pytest.fixture
def quick_keeper(monkeypatch):
    """The keeper's clocks, shortened: a heartbeat every 0.2 s, a server gone after 1.5 s of silence."""
    from mnistlab import run_keeper

    monkeypatch.setattr(run_keeper, "HEARTBEAT_EVERY", 0.2)
    monkeypatch.setattr(run_keeper, "SWEEP_EVERY", 0.2)
    monkeypatch.setattr(run_keeper, "DEAD_AFTER", 1.5)


def test_a_replica_that_goes_silent_has_its_runs_interrupted_by_the_other(database_url, tmp_path, quick_keeper):
    """Issue 35: replica A killed mid-training still showed as training on B 162 s later (B waited 240 s of silence and
    swept every 60 s). Now B sees A's silence within DEAD_AFTER (20 s here, 1.5 s in this test) and a sweep."""
    a = JobManager(RunStore(Database(database_url), tmp_path), GatedBackend(), "replica")
    b = JobManager(RunStore(Database(database_url), tmp_path), GatedBackend(), "replica")
    try:
        run = a.submit(TrainingSettings(**CNN), "browser:a")
        assert wait_until(lambda: b.store.get(run).status == RUNNING, 10)
        silence(a)
        assert wait_until(lambda: b.store.get(run).status == INTERRUPTED, 15), b.store.get(run)
        assert "stopped answering" in b.store.get(run).error or "restarted" in b.store.get(run).error
        assert b.snapshot(run).status == INTERRUPTED
    finally:
        b.shutdown()


@pytest.mark.slow
def test_after_the_database_was_unreachable_no_live_replica_is_taken_for_dead(database_url, tmp_path, quick_keeper, monkeypatch):
    """Everyone's heartbeat is old when the database comes back: a replica judges others only after it has answered
    for DEAD_AFTER seconds, time every live replica has to write its own. Here B gets the database back first, and A
    right after it."""
    import sqlalchemy as sa

    from mnistlab import run_keeper

    monkeypatch.setattr(run_keeper, "DEAD_AFTER", 3.0)
    a = JobManager(RunStore(Database(database_url), tmp_path), GatedBackend(), "replica")
    b = JobManager(RunStore(Database(database_url), tmp_path), GatedBackend(), "replica")
    unreachable = {a: threading.Event(), b: threading.Event()}
    for jobs in (a, b):

        def heartbeat(*arguments, jobs=jobs, original=jobs.store.server_heartbeat):
            if unreachable[jobs].is_set():
                raise sa.exc.OperationalError("UPDATE servers", {}, Exception("could not connect to the database (test)"))
            return original(*arguments)

        monkeypatch.setattr(jobs.store, "server_heartbeat", heartbeat)
    try:
        runs = [a.submit(TrainingSettings(**CNN), "browser:a"), b.submit(TrainingSettings(**CNN), "browser:b")]
        assert wait_until(lambda: [b.store.get(run).status for run in runs] == [RUNNING] * 2, 10)
        for event in unreachable.values():
            event.set()
        # The outage lasts until both heartbeats are twice DEAD_AFTER old.
        from mnistlab.database import servers

        def oldest_heartbeat_age():
            with b.store.database.engine.connect() as connection:
                return time.time() - connection.execute(sa.select(sa.func.max(servers.c.heartbeat_at))).scalar()

        assert wait_until(lambda: oldest_heartbeat_age() > 6, 30)
        unreachable[b].clear()
        assert wait_until(lambda: b._keeping.answered_since is not None, 15)
        unreachable[a].clear()
        # B has answered for twice DEAD_AFTER: it had its chance to judge A, who came back meanwhile, and did not.
        assert wait_until(lambda: time.monotonic() - b._keeping.answered_since > 6, 30)
        assert [b.store.get(run).status for run in runs] == [RUNNING] * 2
    finally:
        a.shutdown()
        b.shutdown()


@pytest.mark.slow
def test_a_locked_database_delays_saving_but_stops_nothing(tmp_path):
    """Another process holds SQLite's write lock for 8 s while a run trains and ends: the run ends in memory at once,
    says its saving is delayed, the next run starts, every thread lives on, and all is written when the lock goes."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = RunStore(Database(url), tmp_path)
    backend = GatedBackend(capacity=1)
    jobs = manager(store, backend)
    first = jobs.submit(TrainingSettings(**CNN, seed=1), "browser:a")
    second = jobs.submit(TrainingSettings(**CNN, seed=2), "browser:b")
    assert wait_until(lambda: len(backend.started) == 1, 5)
    holder = sqlite3.connect(tmp_path / "runs.db", timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        report = backend.reports[backend.started[0]]
        report(EpochDone(EpochRecord(1, 0.9, 0.7, 0.8, 0.72, 3.0, 3.0)))
        backend.finish(backend.started[0])
        assert jobs.snapshot(first).status == FINISHED  # in memory, at once
        assert wait_until(lambda: jobs.snapshot(first).saving_delayed, 15)
        assert wait_until(lambda: len(backend.started) == 2, 5) and job_of(jobs, second) == backend.started[1]
        assert jobs._keeper.is_alive() and jobs._dispatcher.is_alive()
    finally:
        holder.rollback()
        holder.close()
    assert wait_until(lambda: store.get(first).status == FINISHED and not jobs.snapshot(first).saving_delayed, 60)
    assert store.get(first).result.test_accuracy == 0.5 and store.get(second).status == RUNNING
    assert jobs._keeper.is_alive() and jobs._dispatcher.is_alive()


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
    # A convolutional network: Keras' own loop, a few seconds long (a dense one alone trains in a second, packed).
    settings = TrainingSettings(**CNN, train_size=3000, test_size=200, max_epochs=3, batch_size=10)
    run_id = real_jobs.submit(settings, "browser:a")
    seen_batches = []
    while not real_jobs.wait(run_id, 0.05):
        latest = real_jobs.snapshot(run_id).latest_batch
        if latest is not None and (not seen_batches or seen_batches[-1] != (latest.epoch, latest.batch)):
            seen_batches.append((latest.epoch, latest.batch))
    snapshot = real_jobs.snapshot(run_id)
    assert snapshot.status == FINISHED, snapshot.error
    # Progress arrived while training, not all at the end.
    assert len(seen_batches) >= 3 and seen_batches[0] < seen_batches[-1], seen_batches
    assert [record.epoch for record in snapshot.epochs] == [1, 2, 3]
    assert snapshot.result.epochs_run == 3 and 0.5 < snapshot.result.test_accuracy <= 1.0
    # It trained in another process, which says where it was.
    assert pid_of(snapshot) in real_jobs.backend.worker_pids() and pid_of(snapshot) != os.getpid()
    from mnistlab.store import load_model_file

    assert load_model_file(snapshot.model_path).count_params() == snapshot.result.parameters


def test_stop_confirms_within_a_second_for_the_biggest_network_the_server_accepts_and_keeps_the_model(real_jobs):
    # Just under the 3,000,000-parameter limit, on all the digits, in batches of 32.
    biggest = parse_network("dense1024,dense1024,dense512")
    settings = TrainingSettings(dataset="mnist", arch="custom", model_config=biggest, target_accuracy=None, max_epochs=200, batch_size=32)
    real_jobs.check(settings)
    run_id = real_jobs.submit(settings, "browser:stop")
    assert wait_until(lambda: real_jobs.snapshot(run_id).latest_batch is not None, 90)
    before = real_jobs.snapshot(run_id).latest_batch
    pressed = time.monotonic()
    assert real_jobs.cancel(run_id, owner="browser:stop")
    assert wait_until(lambda: real_jobs.snapshot(run_id).stopped_at is not None or real_jobs.snapshot(run_id).is_done, 5)
    took = time.monotonic() - pressed
    assert took < 1.0 + 0.25, f"Stop was confirmed after {took:.2f} s"  # the poll's slack on top of the 1 s promise
    assert real_jobs.wait(run_id, 60)
    snapshot = real_jobs.snapshot(run_id)
    assert snapshot.status == CANCELLED and snapshot.has_model and snapshot.model_path.is_file()
    stopped = snapshot.result.stopped_at
    assert snapshot.result.stop_reason == "cancelled" and stopped.epoch < 200
    assert (stopped.epoch, stopped.batch) >= (before.epoch, before.batch)
    assert "Stopped by you at batch" in snapshot.result.describe_stop()


def test_a_classmate_who_stops_watching_gets_the_model_while_the_shared_training_goes_on(real_jobs):
    settings = TrainingSettings(**{**SMALL, "train_size": 4000}, max_epochs=6, batch_size=16, seed=11)
    leaving, staying = real_jobs.submit(settings, "browser:leaving"), real_jobs.submit(settings, "browser:staying")
    assert real_jobs.snapshot(staying).watchers == 2
    assert wait_until(lambda: real_jobs.snapshot(leaving).latest_batch is not None, 90)
    assert real_jobs.cancel(leaving, owner="browser:leaving")
    assert real_jobs.wait(leaving, 60)
    left = real_jobs.snapshot(leaving)
    assert left.status == CANCELLED and left.model_path.is_file() and left.result.stop_reason == "cancelled"
    assert real_jobs.wait(staying, 120)
    stayed = real_jobs.snapshot(staying)
    assert (
        stayed.status == FINISHED and stayed.result.epochs_run == 6 and stayed.result.stopped_at.fraction_done > left.result.stopped_at.fraction_done
    )


def test_a_pack_trains_several_networks_on_a_real_backend(real_jobs):
    variations = [TrainingSettings(**SMALL, max_epochs=2, seed=21, learning_rate=rate) for rate in (0.001, 0.003, 0.0005)]
    ids = [real_jobs.submit(settings, f"browser:pack{number}") for number, settings in enumerate(variations)]
    for run_id in ids:
        assert real_jobs.wait(run_id, 120), real_jobs.snapshot(run_id)
    snapshots = [real_jobs.snapshot(run_id) for run_id in ids]
    assert all(snapshot.status == FINISHED and snapshot.model_path.is_file() for snapshot in snapshots), [s.error for s in snapshots]
    assert len({snapshot.worker for snapshot in snapshots}) == 1  # one place trained all three
    assert len({snapshot.result.test_accuracy for snapshot in snapshots}) > 1  # three different networks


def test_a_killed_worker_fails_its_run_quickly_and_the_next_run_starts(real_jobs):
    long_run = real_jobs.submit(TrainingSettings(**{**SMALL, "train_size": None}, max_epochs=200, seed=31), "browser:a")
    next_run = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1, seed=32), "browser:b")
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
    again = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1, seed=33), "browser:b")
    assert real_jobs.wait(again, 120) and real_jobs.snapshot(again).status == FINISHED


def test_an_error_in_a_worker_fails_only_that_run(real_jobs):
    bad = real_jobs.submit(TrainingSettings(**SMALL, data_dir="/nonexistent-data-dir"), "browser:a")
    assert real_jobs.wait(bad, 60)
    snapshot = real_jobs.snapshot(bad)
    assert snapshot.status == FAILED and "does not exist" in snapshot.error
    good = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1, seed=41), "browser:a")
    assert real_jobs.wait(good, 60) and real_jobs.snapshot(good).status == FINISHED


def test_two_places_train_two_runs_at_once_in_queue_order(real_jobs):
    jobs = real_jobs
    ids = [jobs.submit(TrainingSettings(**CNN, train_size=1000, test_size=200, max_epochs=40, seed=seed), f"browser:{seed}") for seed in (51, 52, 53)]
    assert wait_until(lambda: jobs.snapshot(ids[0]).status == RUNNING and jobs.snapshot(ids[1]).status == RUNNING, 60)
    assert jobs.snapshot(ids[2]).queue_position == 1
    assert wait_until(lambda: None not in {jobs.snapshot(run_id).worker for run_id in ids[:2]}, 30)
    workers = {jobs.snapshot(run_id).worker for run_id in ids[:2]}
    assert len(workers) == 2  # Two different processes.
    for run_id in ids[:2]:
        jobs.cancel(run_id)
    # The third starts on a freed place; it need not train its 40 epochs to the end.
    assert wait_until(lambda: jobs.snapshot(ids[2]).status == RUNNING, 60)
    jobs.cancel(ids[2])
    assert jobs.wait(ids[2], 60)
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
    run_id = real_jobs.submit(TrainingSettings(**SMALL, max_epochs=1, seed=61), "browser:a")
    assert real_jobs.wait(run_id, 60)
    assert threading.active_count() <= before + 1


def test_a_run_cut_off_by_a_dead_server_is_found_interrupted_with_its_progress(real_jobs, monkeypatch):
    # A CNN (Keras' loop, seconds per epoch): a packed dense network ends epochs many times a second, and the live
    # server, which the test only pretends is dead, would write "running" over the restart's "interrupted".
    settings = TrainingSettings(**CNN, train_size=2000, test_size=200, max_epochs=200, batch_size=50, seed=71)
    run_id = real_jobs.submit(settings, "browser:a")
    # The epochs so far reach the database as they end.
    assert wait_until(lambda: len(real_jobs.store.get(run_id).epochs) >= 1, 120), (real_jobs.snapshot(run_id), real_jobs.load())
    # The server process dies here: its row says a process that does not exist, and it writes no more run states.
    # A new one opens the same database.
    from mnistlab.database import servers

    monkeypatch.setattr(real_jobs.store, "save_state", lambda snapshot: None)

    with real_jobs.store.database.engine.begin() as connection:
        connection.execute(servers.update().where(servers.c.id == real_jobs.server_id).values(pid=2**22 + 9))
    restarted = JobManager(RunStore(Database(real_jobs.store.database.url), real_jobs.store.data_home), GatedBackend(), "another")
    try:
        assert run_id in restarted.interrupted_at_start
        snapshot = restarted.snapshot(run_id)
        assert snapshot.status == INTERRUPTED and snapshot.epochs and snapshot.epochs[0].epoch == 1
    finally:
        restarted.shutdown()
        monkeypatch.undo()
        real_jobs.store.register_server(real_jobs.server_id, real_jobs.host, os.getpid())
        real_jobs.cancel(run_id)
        assert real_jobs.wait(run_id, 60)


def test_an_idle_place_that_dies_is_replaced_before_a_run_is_sent_to_it(real_jobs):
    """A PC switched off while idle (or a worker killed between runs) costs no student a run."""
    assert wait_until(lambda: real_jobs.backend.capacity == 2, 120)
    victim = real_jobs.backend.worker_pids()[0]
    os.kill(victim, 9)
    assert wait_until(lambda: victim not in real_jobs.backend.worker_pids() and real_jobs.backend.capacity == 2, 120), real_jobs.load()
    runs = [
        real_jobs.submit(TrainingSettings(**CNN, train_size=500, test_size=100, max_epochs=1, seed=seed), f"browser:c{seed}") for seed in (81, 82)
    ]
    for run_id in runs:
        assert real_jobs.wait(run_id, 120) and real_jobs.snapshot(run_id).status == FINISHED, real_jobs.snapshot(run_id).error
