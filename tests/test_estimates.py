"""How long trainings take here, from recorded runs: the speed per kind of network, from runs that trained alone."""

from __future__ import annotations

from mnistlab.estimates import Estimates, estimated_seconds, measured_speed
from mnistlab.events import EpochRecord
from mnistlab.runs import FINISHED, RunSnapshot
from mnistlab.settings import TrainingSettings
from mnistlab.sizing import Speed, epoch_seconds

CNN = TrainingSettings(dataset="fashion_mnist", arch="cnn", target_accuracy=None)
DENSE = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=None)
IMAGES, BATCH = 54_000, 32


def recorded(settings: TrainingSettings, scale: float, networks_in_job: int | None = 1, run_id: int = 1, epochs: int = 3) -> RunSnapshot:
    """A finished run whose epochs took `scale` times the arithmetic's estimate."""
    epoch = epoch_seconds(settings.config, IMAGES, BATCH) * scale
    plan = {"train_images": IMAGES, "batch_size": BATCH}
    if networks_in_job is not None:
        plan["networks_in_job"] = networks_in_job
    records = tuple(EpochRecord(number, 0.5, 0.8, 0.5, 0.8, number * epoch, epoch) for number in range(1, epochs + 1))
    return RunSnapshot(
        run_id, "browser:a", FINISHED, FINISHED, settings, plan, None, (), records, None, None, None, 0.0, 100.0, 100.0 + epochs * epoch
    )


def test_a_burst_of_packed_dense_networks_does_not_make_a_cnn_look_slower():
    """Issue 35: after 30 students' dense networks trained in packs, the standard CNN was refused ("about 125 s an epoch
    here") though it had just trained in 14-17 s an epoch. A pack's epoch is the time of all its networks."""
    cnns = [recorded(CNN, 1.2, run_id=number) for number in range(2)]
    packed = [recorded(DENSE, 12.0, networks_in_job=16, run_id=10 + number) for number in range(30)]
    older_packed = [recorded(DENSE, 12.0, networks_in_job=None, run_id=50 + number) for number in range(30)]  # recorded before the field
    speed = measured_speed(packed + older_packed + cnns, convolutional=True)
    assert abs(speed.scale - 1.2) < 1e-6 and speed.measured_epochs == 2
    # Dense networks are measured on dense runs that trained alone; a pack's members say nothing of one network's speed.
    dense_alone = [recorded(DENSE, 0.5, run_id=90)]
    assert measured_speed(packed + dense_alone + cnns, convolutional=False).scale == 0.5
    assert measured_speed(packed, convolutional=False) == Speed()


def test_a_training_on_a_few_dozen_drawings_says_nothing_of_the_speed():
    """CI: a class's own set (30 drawings, one batch an epoch, mostly fixed costs) made every CNN look ten times slower,
    and the next student's CNN was refused as too long. Runs on fewer than 1,000 images are not measured."""
    tiny = recorded(CNN, 40.0, run_id=7)
    tiny = RunSnapshot(
        *[{"train_images": 30, "batch_size": 32, "networks_in_job": 1} if value is tiny.plan else value for value in tiny.__dict__.values()]
    )
    assert measured_speed([tiny], convolutional=True) == Speed()
    assert abs(measured_speed([tiny, recorded(CNN, 1.3, run_id=8)], convolutional=True).scale - 1.3) < 1e-6


def test_the_scale_is_the_median_and_stays_within_bounds():
    runs = [recorded(CNN, scale, run_id=number) for number, scale in enumerate((0.9, 1.1, 30.0))]
    assert abs(measured_speed(runs, convolutional=True).scale - 1.1) < 1e-6
    assert measured_speed([recorded(CNN, 50.0)], convolutional=True).scale == 10.0
    assert measured_speed([recorded(CNN, 0.01)], convolutional=True).scale == 0.2
    assert measured_speed([recorded(CNN, 1.0, epochs=1)], convolutional=True) == Speed()  # its first epoch only: it compiles


def test_a_training_takes_what_the_same_one_took_here_else_the_estimate_of_its_epochs():
    same = [recorded(CNN, 1.0, run_id=number) for number in range(3)]
    taken = [run.ended_at - run.started_at for run in same]
    assert estimated_seconds(CNN, same, Speed()) == sorted(taken)[1]
    other = TrainingSettings(dataset="fashion_mnist", arch="cnn", target_accuracy=None, train_size=10_000)
    slow = Speed(scale=2.0)
    recipe = other.recipe_for(10_000)
    expected = 5.0 + recipe.max_epochs * epoch_seconds(other.config, 10_000, recipe.batch_size, slow)
    assert abs(estimated_seconds(other, same, slow) - expected) < 1e-6


def test_estimates_keep_a_speed_per_kind_and_work_a_trainings_seconds_out_once_per_refresh():
    estimates = Estimates()
    assert estimates.speed(True) == estimates.speed(False) == Speed()
    estimates.update([recorded(CNN, 2.0), recorded(DENSE, 0.5, run_id=2)])
    assert estimates.speed(True).scale == 2.0 and estimates.speed(False).scale == 0.5
    first = estimates.seconds(TrainingSettings(dataset="mnist", arch="cnn", target_accuracy=None))
    assert estimates.seconds(TrainingSettings(dataset="mnist", arch="cnn", target_accuracy=None)) == first
