"""A class's own set as a dataset: split by student, its categories as outputs, trained through the job manager."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.category_sets import CategorySet
from mnistlab.class_set_data import class_set_data
from tests.drivers import drawn_by_a_class


def test_each_students_drawings_are_on_one_side_and_the_categories_become_the_outputs():
    drawings, nicknames = drawn_by_a_class(students=6, each=2, removed_too=True)
    categories = CategorySet.of(["⚪ daire", "kare", "üçgen", "yıldız"]).remove(3)
    made = class_set_data(drawings, categories, nicknames, seed="class-7")
    data = made.dataset
    assert made.class_names == data.class_names == ("⚪ daire", "kare", "üçgen")
    # The removed category's drawings stay out; the others are all there, on one side or the other.
    assert len(data.y_train) + len(data.y_test) == 6 * 3 * 2 and set(np.unique(data.y_train)) == {0, 1, 2}
    assert made.split.train_students.isdisjoint(made.split.test_students) and made.split.test_students
    assert made.split.test_drawings == len(data.y_test)
    assert data.source.location == made.split.tested_on() and "classmates it never saw" in made.split.tested_on()
    # The same class splits the same way each time.
    assert class_set_data(drawings, categories, nicknames, seed="class-7").split == made.split


def test_too_few_drawings_to_learn_or_test_are_said_plainly():
    drawings, nicknames = drawn_by_a_class(students=1, each=3)
    with pytest.raises(ValueError, match="at least 2 students"):
        class_set_data(drawings, CategorySet.of(["circle", "square", "triangle"]), nicknames, seed="s")
    drawings, nicknames = drawn_by_a_class(students=2, each=1)
    with pytest.raises(ValueError, match=r"needs at least 2 drawings of .* to learn from"):
        class_set_data(drawings, CategorySet.of(["circle", "square", "triangle"]), nicknames, seed="s")


@pytest.mark.slow
def test_a_class_set_trains_through_the_job_manager_in_a_worker_and_is_scored_on_classmates_it_never_saw(tmp_path):
    """The set goes with the job to a worker process (it is not loaded by name); the model has the set's outputs and
    its test accuracy is on the drawings of the students kept out of training."""
    from mnistlab.database import Database
    from mnistlab.datasets import OWN_IMAGES
    from mnistlab.jobs import JobManager
    from mnistlab.process_backend import ProcessBackend
    from mnistlab.runs import FINISHED, RunStore
    from mnistlab.settings import TrainingSettings
    from mnistlab.store import load_model_file

    drawings, nicknames = drawn_by_a_class(students=8, each=4)
    made = class_set_data(drawings, CategorySet.of(["daire", "kare", "üçgen"]), nicknames, seed="class-7")
    jobs = JobManager(RunStore(Database(f"sqlite:///{tmp_path / 'runs.db'}"), tmp_path), ProcessBackend(workers=1), "class-set-test")
    try:
        settings = TrainingSettings(dataset=OWN_IMAGES, arch="dense", target_accuracy=None)
        run_id = jobs.submit(settings, "browser:teacher", own_data=made.dataset)
        assert jobs.wait(run_id, 300)
        run = jobs.snapshot(run_id)
        assert run.status == FINISHED, run.error
        assert run.plan["test_images"] == made.split.test_drawings and run.plan["train_images"] < len(made.dataset.y_train)  # less validation
        assert run.result.test_accuracy >= 0.8, run.result  # shapes by hands it never saw
        assert load_model_file(run.model_path).output_shape == (None, 3)
        # The same set again takes this result at once; another split of it is another training.
        same = jobs.submit(settings, "browser:another-teacher", own_data=made.dataset)
        assert jobs.snapshot(same).shared_from == run_id
        other = class_set_data(drawings, CategorySet.of(["daire", "kare", "üçgen"]), nicknames, seed="class-8")
        assert other.split != made.split
        assert jobs.snapshot(jobs.submit(settings, "browser:a-third-teacher", own_data=other.dataset)).shared_from is None
    finally:
        jobs.shutdown()
