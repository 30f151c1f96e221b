"""A class's own set of drawings as the dataset a training uses, tested honestly on classmates it never saw.

The class's drawings of its set (`mnistlab.class_drawings`) are split by student
(`mnistlab.student_split`): the drawings of some students train, those of the others test,
so the score says how the model reads the hand of a classmate it never saw. The categories
the class still draws become the outputs 0, 1, ... in the set's order; drawings of a removed
category stay out. The result is a `Dataset` like Keras' own (`x_train`, `y_train`,
`x_test`, `y_test`, class names), which every training takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.category_sets import CategorySet
from mnistlab.class_drawings import ClassDrawings
from mnistlab.datasets import OWN_IMAGES, Dataset, DatasetInfo, DataSource
from mnistlab.i18n import N_, _
from mnistlab.models import ConvBlock, ModelConfig
from mnistlab.settings import TrainingSettings
from mnistlab.student_split import StudentSplit, split_by_student

MIN_PER_CATEGORY = 2  # drawings of each category on the training side, at least

# The class's network: a small CNN from scratch (no batch normalisation, whose statistics a few dozen drawings cannot
# settle), with light augmentation (small shifts, turns and changes of size), so each drawing counts for several.
SMALL_SET_NETWORK = ModelConfig(conv_blocks=(ConvBlock(16), ConvBlock(32)), dense_units=(64,), dropout=0.25, augmentation=True)
SMALL_SET_EPOCHS, SMALL_SET_BATCH = 30, 32


def class_set_settings(seed: int = 0) -> TrainingSettings:
    """The training settings of a class's network on its own set (its outputs come from the set's categories)."""
    return TrainingSettings(
        dataset=OWN_IMAGES,
        arch="custom",
        model_config=SMALL_SET_NETWORK,
        target_accuracy=None,
        max_epochs=SMALL_SET_EPOCHS,
        batch_size=SMALL_SET_BATCH,
        seed=seed,
    )


@dataclass(frozen=True)
class ClassSetData:
    """The dataset, the split it was made with, and the categories' names (the model's outputs, in order)."""

    dataset: Dataset
    split: StudentSplit
    class_names: tuple[str, ...]


def class_set_data(drawings: ClassDrawings, categories: CategorySet, nicknames: dict[int, str], seed: str) -> ClassSetData:
    """The class's visible drawings of `categories` as a dataset split by student (`seed`: the class's, so each
    training of a class splits it the same way). A ValueError a class understands when there is too little to learn
    from or to test on."""
    active = categories.active
    output = {category.number: position for position, category in enumerate(active)}
    kept = drawings.only(output)
    students = [nicknames.get(int(student), str(int(student))) for student in kept.student_ids]
    per_student: dict[str, int] = {}
    for student in students:
        per_student[student] = per_student.get(student, 0) + 1
    split = split_by_student(per_student, seed)
    testing = np.array([split.side(student) == "test" for student in students], dtype=bool)
    labels = np.array([output[int(label)] for label in kept.labels], np.uint8)
    names = tuple(category.name for category in active)
    for position, name in enumerate(names):
        learned = int(np.sum(labels[~testing] == position))
        if learned < MIN_PER_CATEGORY:
            raise ValueError(
                _("The network needs at least {least} drawings of {name} to learn from, by the classmates it trains on; it has {count}.").format(
                    least=MIN_PER_CATEGORY, name=name, count=learned
                )
            )
    info = DatasetInfo(
        name=OWN_IMAGES,
        title=N_("the class's own drawings"),
        description=N_("The categories a class drew together."),
        class_names=names,
        keras_npz=None,
        keras_subdir=None,
        system_dirs=(),
        how_to_get="",
        suggested_target=0.9,
        published_train_size=int(np.sum(~testing)),
    )
    dataset = Dataset(
        info,
        kept.images[~testing],
        labels[~testing],
        kept.images[testing],
        labels[testing],
        DataSource("class", split.tested_on()),
    )
    return ClassSetData(dataset, split, names)
