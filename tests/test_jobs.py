import threading
from types import SimpleNamespace

import pytest

from mnistlab.jobs import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, TrainingQueue
from mnistlab.training import TrainingSettings, train


class GatedTrainer:
    """A stand-in for the engine that waits for the test to let each run finish."""

    def __init__(self):
        self.started = []
        self.gates = {}
        self.lock = threading.Lock()

    def __call__(self, settings, dataset=None, listeners=(), cancel=None):
        gate = threading.Event()
        with self.lock:
            self.started.append(settings.seed)
            self.gates[settings.seed] = gate
        gate.wait(30)
        if settings.seed == 99:
            raise ValueError("impossible settings (test)")
        return SimpleNamespace(result=SimpleNamespace(stop_reason="max epochs"), name=f"trained-{settings.seed}")

    def release(self, seed):
        for _ in range(300):
            with self.lock:
                gate = self.gates.get(seed)
            if gate:
                gate.set()
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"run {seed} never started")


def _wait_until(condition, timeout=10.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        event.wait(0.01)
    return False


def test_queue_runs_one_at_a_time_and_reports_places():
    trainer = GatedTrainer()
    queue = TrainingQueue(max_running=1, train_function=trainer)
    jobs = [queue.submit(TrainingSettings(seed=seed)) for seed in (1, 2, 3)]
    assert _wait_until(lambda: jobs[0].status == RUNNING)
    assert [job.snapshot().queue_position for job in jobs] == [None, 1, 2]
    assert jobs[1].status == QUEUED and queue.running == 1 and queue.waiting == 2
    trainer.release(1)
    assert jobs[0].wait(10) and jobs[0].status == FINISHED and jobs[0].trained.name == "trained-1"
    assert _wait_until(lambda: jobs[1].status == RUNNING)
    assert jobs[2].snapshot().queue_position == 1
    trainer.release(2)
    trainer.release(3)
    assert jobs[2].wait(10)
    assert trainer.started == [1, 2, 3]


def test_two_can_run_at_once_when_allowed():
    trainer = GatedTrainer()
    queue = TrainingQueue(max_running=2, train_function=trainer)
    jobs = [queue.submit(TrainingSettings(seed=seed)) for seed in (1, 2, 3)]
    assert _wait_until(lambda: queue.running == 2)
    assert jobs[2].snapshot().queue_position == 1
    for seed in (1, 2, 3):
        trainer.release(seed)
    assert all(job.wait(10) for job in jobs)


def test_cancel_a_waiting_job_leaves_the_queue():
    trainer = GatedTrainer()
    queue = TrainingQueue(max_running=1, train_function=trainer)
    first, second, third = (queue.submit(TrainingSettings(seed=seed)) for seed in (1, 2, 3))
    assert _wait_until(lambda: first.status == RUNNING)
    second.cancel()
    assert second.wait(10) and second.status == CANCELLED
    assert third.snapshot().queue_position == 1
    trainer.release(1)
    trainer.release(3)
    assert third.wait(10) and trainer.started == [1, 3]


def test_a_failing_run_reports_its_error():
    trainer = GatedTrainer()
    queue = TrainingQueue(max_running=1, train_function=trainer)
    job = queue.submit(TrainingSettings(seed=99))
    trainer.release(99)
    assert job.wait(10)
    assert job.status == FAILED and job.snapshot().error == "impossible settings (test)"
    # The failed run gave its place back.
    assert queue.running == 0


def test_real_training_job_records_progress(digits_sample):
    queue = TrainingQueue(max_running=1, train_function=train)
    settings = TrainingSettings(dataset="mnist", arch="dense", train_size=1000, test_size=100, target_accuracy=None, max_epochs=2)
    job = queue.submit(settings, dataset=digits_sample)
    assert job.wait(120)
    snapshot = job.snapshot()
    assert snapshot.status == FINISHED and snapshot.is_done
    assert [record.epoch for record in snapshot.epochs] == [1, 2]
    assert snapshot.curve and snapshot.curve[-1].epoch == 2
    assert snapshot.result.epochs_run == 2 and snapshot.elapsed > 0
    assert job.trained.model is not None


def test_queue_needs_at_least_one_place():
    with pytest.raises(ValueError, match="At least one"):
        TrainingQueue(max_running=0)
