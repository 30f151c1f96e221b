import threading

import pytest

from mnistlab.events import TrainingListener
from mnistlab.models import ConvBlock, ModelConfig
from mnistlab.settings import TrainingSettings
from mnistlab.training import train


class Recorder(TrainingListener):
    def __init__(self, cancel_at_batch=None, cancel=None):
        self.phases, self.batches, self.epochs, self.plan, self.result = [], [], [], None, None
        self.cancel_at_batch, self.cancel = cancel_at_batch, cancel

    def on_phase(self, phase):
        self.phases.append(phase)

    def on_train_start(self, plan):
        self.plan = plan

    def on_batch_end(self, progress):
        self.batches.append(progress)
        if self.cancel_at_batch is not None and len(self.batches) == self.cancel_at_batch:
            self.cancel.set()

    def on_epoch_end(self, record):
        self.epochs.append(record)

    def on_train_end(self, result):
        self.result = result


SMALL = dict(dataset="mnist", arch="dense", train_size=1000, test_size=200)


def test_stops_at_the_first_epoch_that_reaches_the_target(digits_sample):
    reference = train(TrainingSettings(**SMALL, target_accuracy=None, max_epochs=4), dataset=digits_sample)
    values = [record.val_accuracy for record in reference.result.history]
    assert values[-1] > values[0], "the reference run must improve for this test to mean anything"
    # A target between the first and the best epoch is first reached at a later epoch.
    target = (values[0] + max(values)) / 2
    first_epoch = next(index for index, value in enumerate(values, start=1) if value >= target)
    recorder = Recorder()
    run = train(TrainingSettings(**SMALL, target_accuracy=target, max_epochs=4), dataset=digits_sample, listeners=[recorder])
    result = run.result
    assert first_epoch >= 2
    assert result.stop_reason == "target reached"
    assert result.epochs_run == first_epoch
    assert result.target_reached.epoch == first_epoch
    assert result.target_reached.batch == recorder.plan.batches_per_epoch
    assert all(record.val_accuracy < target for record in result.history[:-1])
    assert result.history[-1].val_accuracy >= target
    assert f"at epoch {first_epoch}" in result.describe_stop()
    assert recorder.phases == ["loading data", "building model", "training", "evaluating"]
    assert recorder.result is result


def test_unreachable_target_runs_max_epochs(digits_sample):
    result = train(TrainingSettings(**SMALL, target_accuracy=1.0, max_epochs=2), dataset=digits_sample).result
    assert result.stop_reason == "max epochs"
    assert result.epochs_run == 2 and result.target_reached is None
    assert 0.0 <= result.test_accuracy <= 1.0 and result.parameters == 101_770


def test_target_checked_every_n_batches_on_training_accuracy(digits_sample):
    settings = TrainingSettings(
        dataset="mnist",
        arch="custom",
        model_config=ModelConfig(dense_units=(64,)),
        batch_size=20,
        train_size=1000,
        test_size=100,
        target_accuracy=0.5,
        monitor="accuracy",
        check_every_batches=5,
        max_epochs=3,
    )
    recorder = Recorder()
    result = train(settings, dataset=digits_sample, listeners=[recorder]).result
    reached = result.target_reached
    assert result.stop_reason == "target reached"
    assert reached.epoch == 1 and reached.batch % 5 == 0 and reached.batch < recorder.plan.batches_per_epoch
    assert reached.value >= 0.5
    # It stopped right there: no batch ran after the one that reached the target.
    assert recorder.batches[-1].batch == reached.batch


def test_target_checked_every_n_batches_on_validation_accuracy(digits_sample):
    settings = TrainingSettings(
        dataset="mnist",
        arch="custom",
        model_config=ModelConfig(dense_units=(64,)),
        batch_size=20,
        train_size=1000,
        test_size=100,
        target_accuracy=0.6,
        monitor="val_accuracy",
        check_every_batches=10,
        max_epochs=3,
    )
    result = train(settings, dataset=digits_sample).result
    assert result.target_reached is not None and result.target_reached.batch % 10 == 0
    assert "validation accuracy" in result.describe_stop()


def test_cancel_is_honoured_within_one_batch(digits_sample):
    cancel = threading.Event()
    recorder = Recorder(cancel_at_batch=3, cancel=cancel)
    settings = TrainingSettings(
        dataset="mnist",
        arch="custom",
        model_config=ModelConfig(conv_blocks=(ConvBlock(4),), dense_units=(16,)),
        batch_size=32,
        train_size=2000,
        test_size=100,
        target_accuracy=None,
        max_epochs=5,
    )
    run = train(settings, dataset=digits_sample, listeners=[recorder], cancel=cancel)
    assert run.result.stop_reason == "cancelled"
    assert len(recorder.batches) == 3
    assert run.result.epochs_run == 1
    assert run.model is not None and run.result.test_accuracy is not None


def test_cancel_from_another_thread(digits_sample):
    cancel = threading.Event()
    started = threading.Event()

    class Signal(TrainingListener):
        def on_batch_end(self, progress):
            started.set()

    settings = TrainingSettings(**SMALL, target_accuracy=None, max_epochs=200)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("run", train(settings, dataset=digits_sample, listeners=[Signal()], cancel=cancel)))
    worker.start()
    assert started.wait(60)
    cancel.set()
    worker.join(60)
    assert not worker.is_alive()
    assert outcome["run"].result.stop_reason == "cancelled" and outcome["run"].result.epochs_run < 200


def test_same_seed_same_run(digits_sample):
    settings = TrainingSettings(**SMALL, target_accuracy=None, max_epochs=2, seed=7)
    first = train(settings, dataset=digits_sample).result.history
    second = train(settings, dataset=digits_sample).result.history
    assert [record.val_accuracy for record in first] == [record.val_accuracy for record in second]
    assert [record.loss for record in first] == pytest.approx([record.loss for record in second], rel=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(target_accuracy=0.0), "a fraction from 0.1 to 1"),
        (dict(target_accuracy=1.5), "a fraction from 0.1 to 1"),
        (dict(max_epochs=0), "Max epochs must be from 1 to 200"),
        (dict(max_epochs=2.5), "Max epochs must be a whole number"),
        (dict(batch_size=0), "Batch size must be from 1 to 1,024"),
        (dict(dataset="cifar10"), "Dataset must be one of"),
        (dict(arch="transformer"), "Architecture must be one of"),
        (dict(monitor="acc"), "Watch must be one of: accuracy, val_accuracy"),
        (dict(validation_split=0.0), "needs some validation data"),
        (dict(learning_rate=-1.0), "Learning rate must be above 0"),
        (dict(arch="custom"), "build yourself needs its layers"),
        (dict(normalization="minmax"), "Normalisation must be one of"),
    ],
)
def test_bad_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(**overrides)


def test_dataset_must_match_settings(digits_sample):
    with pytest.raises(ValueError, match="settings ask for 'fashion_mnist'"):
        train(TrainingSettings(dataset="fashion_mnist", arch="dense"), dataset=digits_sample)
