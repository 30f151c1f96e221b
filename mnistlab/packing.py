"""Packed training: several networks trained in one pass over the same batches (a class race).

When a class presses Train at once, many of its networks differ only in what a lesson
lets students vary (the hidden layer's size, the learning rate, the epochs, the target)
and read the very same images in the same order: the same dataset, seed, batch size and
image count. `train_pack` trains such networks together: each group of K batches is made
once, and every network trains on it with its own weights, optimizer state, learning
rate and target, in a compiled (XLA) step that all networks of the same structure share
(compiled once per process: `structure_of`, `CompiledStep`), the networks shared out
among threads, one per CPU core. A class's twelve networks so cost one job, one data
preparation and a compile per structure, and keep both cores busy (docs/PERFORMANCE.md
gives the measured speed-up and the command that measured it).

Each network keeps the engine of a run of its own (`mnistlab.training.TrainingEngine`):
its live progress, its target, its Stop, its snapshots and its result, and the very
start it would have alone (built after the same seed). A network that reaches its
target, its last epoch or is stopped leaves the pack and the others go on, and nothing
is compiled again. A network's step is the same computation whatever else is in the
pack, so a network gets the same weights, bit for bit, in a pack of twelve and in a pack
of one (the job manager trains a dense network alone as a pack of one); tests check
that, and that a pack matches Keras' own `fit` up to floating-point noise.

Only networks that XLA compiles well are packed: dense networks without random
augmentation. Convolutional networks train alone (XLA's CPU convolutions are slower
than oneDNN's here); identical ones are shared by the job manager instead.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from mnistlab.datasets import Dataset
from mnistlab.evaluation import forward
from mnistlab.events import TrainingListener
from mnistlab.optimizers import make_optimizer
from mnistlab.settings import TrainingSettings
from mnistlab.training import (
    LabelledImages,
    Prepared,
    TrainedModel,
    TrainingEngine,
    build,
    notify_phase,
    plan_of,
    prepare,
    score,
    snapshot_handler,
)

# At most this many networks in one pack (a class of 25 with variations fills about two).
MAX_PACK = 16
# Batches per compiled call: progress and Stop are checked between calls.
STEPS_PER_CALL = 32


def can_pack(settings: TrainingSettings) -> bool:
    """Whether a network can train in a pack: dense, and no random augmentation layers."""
    config = settings.config
    return not config.is_convolutional and not config.augmentation and not config.mirror


def _pack_values(settings: TrainingSettings) -> dict:
    """What networks of one pack share, by the training setting's name (the batch size the recipe gives, if unset)."""
    return {
        "dataset": settings.dataset,
        "seed": settings.seed,
        "batch_size": settings.batch_size or settings.base_recipe.batch_size,
        "train_size": settings.train_size,
        "test_size": settings.test_size,
        "validation_split": settings.validation_split,
        "normalization": settings.normalization,
        "data_dir": settings.data_dir,
    }


def pack_key(settings: TrainingSettings) -> tuple:
    """Networks with the same key read the same batches in the same order, so they can share them."""
    return tuple(_pack_values(settings).values())


def why_alone(settings: TrainingSettings, packed: Sequence[TrainingSettings]) -> str | None:
    """Why a network trains alone while `packed` (classmates' networks) train in a pack, in a student's words: "Batch
    size 128, theirs 32". None when nothing keeps it out of their pack."""
    from collections import Counter

    from mnistlab.i18n import _
    from mnistlab.settings import SETTING

    if not can_pack(settings):
        if settings.config.is_convolutional:
            return _("a convolutional network trains alone (only dense networks train in a pack)")
        return _("a network with random augmentation trains alone")
    if not packed:
        return None
    theirs = Counter(pack_key(other) for other in packed if can_pack(other)).most_common(1)
    if not theirs or theirs[0][0] == pack_key(settings):
        return None
    names = list(_pack_values(settings))
    mine, common = _pack_values(settings), dict(zip(names, theirs[0][0], strict=True))

    def shown(name: str, value) -> str:
        return _("all") if value is None else SETTING[name].write(value)

    return "; ".join(
        _("{setting} {mine}, theirs {theirs}").format(setting=_(SETTING[name].label), mine=shown(name, mine[name]), theirs=shown(name, common[name]))
        for name in names
        if mine[name] != common[name]
    )


def _validation_logs(model, data) -> dict:
    if data.y_val is None:
        return {}
    probabilities = forward(model, data.x_val)
    chosen = probabilities[np.arange(len(data.y_val)), data.y_val]
    return {
        "val_loss": float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean()),
        "val_accuracy": float((probabilities.argmax(axis=1) == data.y_val).mean()),
    }


def structure_of(prepared: Prepared) -> tuple:
    """What a network's compiled step depends on: its layers and its optimizer, not its weights or constant learning rate.

    Networks with the same structure share one compiled step (their weights, optimizer state and learning rate are its
    arguments). A one-cycle schedule is computed inside the step, so its peak and length are part of the structure.
    """
    recipe = prepared.recipe
    schedule = (recipe.learning_rate, prepared.batches_per_epoch * recipe.max_epochs) if recipe.schedule == "one_cycle" else None
    return (prepared.settings.config, recipe.optimizer, recipe.schedule, schedule, recipe.batch_size)


def _variables(model, optimizer) -> list:
    """A network's state, in one order: its weights, its other state (dropout seeds, batch statistics), its optimizer's."""
    return [*model.trainable_variables, *model.non_trainable_variables, *optimizer.variables]


@contextlib.contextmanager
def _wearing(model, optimizer, variables: list):
    """While a step is traced, `model`'s and `optimizer`'s Keras variables stand for `variables` (TensorFlow ones).

    Keras keeps a variable's TensorFlow variable in `_value`, and an optimizer finds a weight's state by the key of
    that TensorFlow variable: both are pointed at the step's arguments, and put back after (Keras is pinned, and
    the tests compare the result with Keras' own `fit`).
    """
    template = _variables(model, optimizer)
    own = [variable._value for variable in template]
    own_indices = optimizer._trainable_variables_indices
    for variable, other in zip(template, variables, strict=True):
        variable._value = other
    optimizer._trainable_variables_indices = {optimizer._var_key(variable): index for index, variable in enumerate(model.trainable_variables)}
    try:
        yield
    finally:
        for variable, value in zip(template, own, strict=True):
            variable._value = value
        optimizer._trainable_variables_indices = own_indices


class CompiledStep:
    """One compiled (XLA) training step for every network of a structure: the network's variables are its arguments.

    `step(variables, images, labels, weights, valid)` trains the network whose variables (`_variables`) it is given
    on the first `valid` of its K batches, in place, and returns (loss x images, right answers). It is traced on a
    copy of a network of the structure whose variables stand for the ones it is given, so it is compiled once for
    all the networks of a structure (a compile costs about as much as an epoch of a small network), and a network's
    step is the same computation in a pack of one and in a pack of twelve (a test checks it, bit for bit). Every
    batch has the batch size: the last, smaller batch is padded and its padding weighs nothing.
    """

    def __init__(self, model, optimizer):
        import keras
        import tensorflow as tf

        template = keras.models.clone_model(model)
        template_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        template_optimizer.build(template.trainable_variables)
        self._shapes = [tuple(variable.shape) for variable in _variables(template, template_optimizer)]
        self.parameters = template.count_params()

        def one_batch(images, labels, weights):
            with tf.GradientTape() as tape:
                output = template(images, training=True)
                each = keras.losses.sparse_categorical_crossentropy(labels, output)
                loss = tf.reduce_sum(each * weights) / tf.reduce_sum(weights)
            gradients = tape.gradient(loss, template.trainable_variables)
            template_optimizer.apply(gradients, template.trainable_variables)
            right = tf.cast(tf.equal(tf.argmax(output, axis=1, output_type=tf.int32), labels), tf.float32)
            return tf.stack([loss * tf.reduce_sum(weights), tf.reduce_sum(right * weights)])

        @tf.function(jit_compile=True)
        def step(variables, images, labels, weights, valid):
            with _wearing(template, template_optimizer, variables):
                totals = tf.zeros((2,), tf.float32)
                # A while loop, not `tf.range(valid)`: XLA needs a range's length when it compiles, so every other
                # number of batches (an epoch's last group) would compile the step again; a loop's bound it does not.
                index = tf.constant(0, tf.int32)
                while index < valid:
                    totals += one_batch(images[index], labels[index], weights[index])
                    index += 1
                return totals

        self._step = step

    def fits(self, variables: list) -> bool:
        """Whether these are the variables of a network of this step's structure."""
        return [tuple(variable.shape) for variable in variables] == self._shapes

    def __call__(self, variables: list, images, labels, weights, valid) -> np.ndarray:
        return self._step([variable.value for variable in variables], images, labels, weights, valid).numpy()


# Compiled steps kept by this process, the most recently used last: a server's worker trains lesson after lesson,
# and a class's networks come back (a new seed, another learning rate) with the same structures. Each keeps the copy
# of a network it was traced on (its weights and optimizer state: 12 bytes a parameter), so the parameters are capped.
KEEP_COMPILED = 8
KEEP_COMPILED_PARAMETERS = 6_000_000
_COMPILED: OrderedDict[tuple, CompiledStep] = OrderedDict()
_COMPILED_LOCK = threading.Lock()


def _kept_parameters() -> int:
    return sum(step.parameters for step in _COMPILED.values())


def compiled_step(structure: tuple, model, optimizer) -> CompiledStep:
    """The compiled step of networks of this structure (see `structure_of`), made from `model` and `optimizer` once."""
    with _COMPILED_LOCK:
        step = _COMPILED.pop(structure, None)
        if step is None:
            step = CompiledStep(model, optimizer)
        _COMPILED[structure] = step
        while len(_COMPILED) > 1 and (len(_COMPILED) > KEEP_COMPILED or _kept_parameters() > KEEP_COMPILED_PARAMETERS):
            _COMPILED.popitem(last=False)
    if not step.fits(_variables(model, optimizer)):
        raise RuntimeError(f"a network does not have the variables of its structure {structure}")
    return step


class _Steps:
    """A pack's step: each network's compiled step (one per structure) on the same batches, shared out among threads.

    Each network trains the group's K batches in its own call; the calls are shared out among threads, one per CPU
    core (TensorFlow lets go of Python while it computes), the biggest networks first, so both cores work on whole
    networks. A network that leaves is no longer called: nothing is compiled again when the pack shrinks.
    """

    def __init__(self, models: list, optimizers: list, structures: list[tuple]):
        self._parameters = [model.count_params() for model in models]
        self._steps, self._variables = [], []
        for model, optimizer, structure in zip(models, optimizers, structures, strict=True):
            optimizer.build(model.trainable_variables)
            self._steps.append(compiled_step(structure, model, optimizer))
            self._variables.append(_variables(model, optimizer))
        threads = min(_cores(), len(models))
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="pack") if threads > 1 else None

    def __call__(self, members: list[int], group: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> dict[int, np.ndarray]:
        """Train `members` on the batches of `group` (at most STEPS_PER_CALL); returns each one's (loss x images, right answers)."""
        import tensorflow as tf

        images = np.zeros((STEPS_PER_CALL, batch_size, 28, 28), np.float32)
        labels = np.zeros((STEPS_PER_CALL, batch_size), np.int32)
        weights = np.zeros((STEPS_PER_CALL, batch_size), np.float32)
        for index, (batch_images, batch_labels) in enumerate(group):
            images[index, : len(batch_labels)] = batch_images
            labels[index, : len(batch_labels)] = batch_labels
            weights[index, : len(batch_labels)] = 1.0
        # Tensors made once for all the networks (each call would copy the arrays again).
        images, labels, weights = tf.constant(images), tf.constant(labels), tf.constant(weights)
        valid = tf.constant(len(group), tf.int32)

        def train_one(number: int) -> np.ndarray:
            return self._steps[number](self._variables[number], images, labels, weights, valid)

        # The biggest networks first, so the threads end the group together.
        order = sorted(members, key=lambda number: -self._parameters[number])
        return dict(zip(order, self.each(train_one, order), strict=True))

    def each(self, work: Callable, numbers: list[int]) -> list:
        """`work(number)` for each network, shared out among the pack's threads (a network's own work stays in one call)."""
        return list(map(work, numbers) if self._threads is None else self._threads.map(work, numbers))

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown()


def _cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def train_pack(
    settings_list: Sequence[TrainingSettings],
    dataset: Dataset | None = None,
    listeners: Sequence[Sequence[TrainingListener]] = (),
    cancels: Sequence[threading.Event | None] = (),
    snapshots: Sequence[Callable[[], bool] | None] = (),
    extra_train: LabelledImages | None = None,
    extra_tests: dict[str, LabelledImages] | None = None,
    on_done: Callable[[int, TrainedModel], None] | None = None,
) -> list[TrainedModel]:
    """Train the networks together; each one's listeners hear about it alone. Returns their trained models in order.

    `on_done(index, trained)` is called as each network leaves the pack, so its result is out before the others end.
    """
    count = len(settings_list)
    if not count:
        return []
    keys = {pack_key(settings) for settings in settings_list}
    if len(keys) != 1:
        raise ValueError("Networks in one pack must read the same batches: the same dataset, seed, batch size and image counts.")
    if not all(can_pack(settings) for settings in settings_list):
        raise ValueError("Only dense networks without augmentation can train in a pack.")
    listeners = [list(group) for group in listeners] or [[] for _ in range(count)]
    cancels = list(cancels) or [None] * count
    snapshots = list(snapshots) or [None] * count
    everyone = [listener for group in listeners for listener in group]

    notify_phase(everyone, "loading data")
    first = prepare(settings_list[0], dataset, extra_train)
    data = first.data
    prepared = [
        first if number == 0 else Prepared(settings, first.dataset, data, settings.recipe_for(len(data.y_train)), first.batches_per_epoch)
        for number, settings in enumerate(settings_list)
    ]

    notify_phase(everyone, "building model")
    models, optimizers, engines = [], [], []
    for number, ready in enumerate(prepared):
        model = build(ready, compiled=False)
        model.stop_training = False
        steps_total = ready.batches_per_epoch * ready.recipe.max_epochs
        models.append(model)
        optimizers.append(make_optimizer(ready.recipe, steps_total))
        for listener in listeners[number]:
            listener.on_train_start(plan_of(ready, model))
    step = _Steps(models, optimizers, [structure_of(ready) for ready in prepared])

    notify_phase(everyone, "training")
    for number, ready in enumerate(prepared):
        engines.append(
            TrainingEngine(
                ready.settings,
                ready.recipe,
                data,
                ready.batches_per_epoch,
                listeners[number],
                cancels[number],
                snapshots[number],
                snapshot_handler(ready, listeners[number], extra_tests),
            )
        )
    batches = data.training_batches(first.recipe.batch_size, seed=settings_list[0].seed)
    # Keras' fit peeks at the first batches and then starts a new epoch (a new order) before training: so do we,
    # so a packed network reads exactly the batches it would alone (the packed-against-alone test checks it).
    batches.on_epoch_end()
    results: list[TrainedModel | None] = [None] * count
    active = np.ones(count, bool)
    batch_size = first.recipe.batch_size
    epoch = 0
    try:
        while active.any():
            epoch += 1
            for number in np.flatnonzero(active):
                engines[number].begin_epoch(epoch)
            sums = np.zeros((count, 2))
            seen = 0
            for start in range(0, len(batches), STEPS_PER_CALL):
                group = [batches[index] for index in range(start, min(start + STEPS_PER_CALL, len(batches)))]
                for number, totals in step([int(number) for number in np.flatnonzero(active)], group, batch_size).items():
                    sums[number] += totals
                seen += sum(len(labels) for _images, labels in group)
                for number in np.flatnonzero(active):
                    logs = {"loss": sums[number, 0] / seen, "accuracy": sums[number, 1] / seen}
                    engines[number].after_batch(models[number], start + len(group), logs)
                _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone=False, each=step.each)
                if not active.any():
                    break
            if not active.any():
                break
            batches.on_epoch_end()
            numbers = [int(number) for number in np.flatnonzero(active)]
            validation = step.each(lambda number: _validation_logs(models[number], data), numbers)
            for number, validation_logs in zip(numbers, validation, strict=True):
                logs = {"loss": sums[number, 0] / seen, "accuracy": sums[number, 1] / seen, **validation_logs}
                engines[number].after_epoch(models[number], epoch, logs)
            _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone=True, each=step.each)
    finally:
        step.close()
    return [result for result in results if result is not None]


def _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone: bool, each: Callable) -> None:
    """Networks that reached their target, their last epoch (at an epoch's end) or were stopped leave the pack.

    Those leaving together are scored on the test set together (`each`: among the pack's threads)."""
    leaving = [int(number) for number in np.flatnonzero(active) if models[number].stop_training or (everyone and engines[number].done)]
    for number in leaving:
        active[number] = False
        notify_phase(listeners[number], "evaluating")
    scored = each(lambda number: score(prepared[number], models[number], engines[number], engines[number].elapsed(), extra_tests), leaving)
    for number, trained in zip(leaving, scored, strict=True):
        for listener in listeners[number]:
            listener.on_train_end(trained.result)
        results[number] = trained
        if on_done is not None:
            on_done(number, trained)


def packed_settings(settings: TrainingSettings, **changes) -> TrainingSettings:
    """A variation of `settings` that can share its batches (tests, benchmarks)."""
    return replace(settings, **changes)
