"""Packed training: several networks trained in one pass over the same batches (a class race).

When a class presses Train at once, many of its networks differ only in what a lesson
lets students vary (the hidden layer's size, the learning rate, the epochs, the target)
and read the very same images in the same order: the same dataset, seed, batch size and
image count. `train_pack` trains such networks together: every step takes one batch and
updates each network with its own weights, optimizer state, learning rate and target,
in compiled (XLA) computations, one per CPU core, each for a share of the networks,
so the per-step overhead that dominates a small network is paid once per lane, not per
network (docs/PERFORMANCE.md gives the measured speed-up and the command that measured it).

Each network keeps the engine of a run of its own (`mnistlab.training.TrainingEngine`):
its live progress, its target, its Stop, its snapshots and its result, and the very
start it would have alone (built after the same seed). A network that reaches its
target, its last epoch or is stopped leaves the pack and the others go on (the pack
computes it on, unread, until half of its networks have left, then compiles again for
the rest: compiling costs about as much as a few epochs of a small network). Each network's
part of the step is the same computation whatever else is in the pack, so a network
gets the same weights, bit for bit, in a pack of twelve and in a pack of one (the job
manager trains a dense network alone as a pack of one); tests check that, and that a
pack matches Keras' own `fit` up to floating-point noise.

Only networks that XLA compiles well are packed: dense networks without random
augmentation. Convolutional networks train alone (XLA's CPU convolutions are slower
than oneDNN's here); identical ones are shared by the job manager instead.
"""

from __future__ import annotations

import os
import threading
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


def pack_key(settings: TrainingSettings) -> tuple:
    """Networks with the same key read the same batches in the same order, so they can share them."""
    batch = settings.batch_size or settings.base_recipe.batch_size
    return (
        settings.dataset,
        settings.seed,
        batch,
        settings.train_size,
        settings.test_size,
        settings.validation_split,
        settings.normalization,
        settings.data_dir,
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


class _Lane:
    """One compiled step for some networks of the pack: up to K batches, each updating every one of them.

    Each network's part of the step is its own layers and its own optimizer on the shared batch: the same computation
    as in a pack of one, so the same numbers, bit for bit (a test checks it). What the networks share is the call:
    one compiled computation runs K batches for all of them.

    The step always takes K batches of the batch size (the last, smaller batch is padded and its padding weighs
    nothing), so it is compiled once for its networks.
    """

    def __init__(self, members: list[int], models: list, optimizers: list):
        import keras
        import tensorflow as tf

        self.members = members
        chosen = [(models[number], optimizers[number]) for number in members]
        for model, optimizer in chosen:
            optimizer.build(model.trainable_variables)

        def train_all(images, labels, weights):
            with tf.GradientTape() as tape:
                losses, rows = [], []
                for model, _optimizer in chosen:
                    x = images
                    for layer in model.layers:
                        if not isinstance(layer, keras.layers.InputLayer):
                            x = layer(x, training=True)
                    each = keras.losses.sparse_categorical_crossentropy(labels, x)
                    loss = tf.reduce_sum(each * weights) / tf.reduce_sum(weights)
                    right = tf.cast(tf.equal(tf.argmax(x, axis=1, output_type=tf.int32), labels), tf.float32)
                    losses.append(loss)
                    rows.append(tf.stack([loss * tf.reduce_sum(weights), tf.reduce_sum(right * weights)]))
                # Each network's weights touch only its own loss, so the sum's gradient is each one's own.
                total = tf.add_n(losses)
            variables = [model.trainable_variables for model, _optimizer in chosen]
            gradients = tape.gradient(total, variables)
            for (_model, optimizer), own, weights_of in zip(chosen, gradients, variables, strict=True):
                optimizer.apply(own, weights_of)
            return tf.stack(rows)

        @tf.function(jit_compile=True)
        def step(images, labels, weights, valid):
            totals = tf.zeros((len(chosen), 2), tf.float32)
            for index in tf.range(valid):
                totals += train_all(images[index], labels[index], weights[index])
            return totals

        self._step = step

    def __call__(self, images: np.ndarray, labels: np.ndarray, weights: np.ndarray, valid: int) -> dict[int, np.ndarray]:
        totals = self._step(images, labels, weights, np.int32(valid)).numpy()
        return dict(zip(self.members, totals, strict=True))


def _lanes_for(members: list[int], models: list, lanes: int) -> list[list[int]]:
    """The networks shared out among `lanes` lanes with about equal work (parameters) each, the biggest first."""
    shares: list[list[int]] = [[] for _ in range(max(1, min(lanes, len(members))))]
    loads = [0] * len(shares)
    for number in sorted(members, key=lambda number: -models[number].count_params()):
        lightest = loads.index(min(loads))
        shares[lightest].append(number)
        loads[lightest] += models[number].count_params()
    return [sorted(share) for share in shares]


class _Step:
    """One step of the pack: its networks split into lanes, one per CPU core, each lane compiled apart.

    The lanes run side by side in threads (TensorFlow lets go of Python while it computes). A compiled step keeps
    both cores busy in its matrix products but updates the weights (Adam) on one core, so two lanes of six
    networks train twelve networks faster than one lane of twelve, and they compile side by side too.

    A network that leaves the pack keeps being computed as a ghost whose result nobody reads (switching it off
    inside the compiled step costs more than computing it); once half of the networks are ghosts, the pack is
    compiled again without them.
    """

    def __init__(self, members: list[int], models: list, optimizers: list, lanes: int | None = None):
        self.members = members
        shares = _lanes_for(members, models, lanes or _cores())
        self._lanes = [_Lane(share, models, optimizers) for share in shares]
        self._threads = ThreadPoolExecutor(len(self._lanes), thread_name_prefix="pack-lane") if len(self._lanes) > 1 else None

    def __call__(self, group: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> dict[int, np.ndarray]:
        """Train on the batches of `group` (at most STEPS_PER_CALL); returns each member's (loss x images, right answers)."""
        images = np.zeros((STEPS_PER_CALL, batch_size, 28, 28), np.float32)
        labels = np.zeros((STEPS_PER_CALL, batch_size), np.int32)
        weights = np.zeros((STEPS_PER_CALL, batch_size), np.float32)
        for index, (batch_images, batch_labels) in enumerate(group):
            images[index, : len(batch_labels)] = batch_images
            labels[index, : len(batch_labels)] = batch_labels
            weights[index, : len(batch_labels)] = 1.0
        if self._threads is None:
            return self._lanes[0](images, labels, weights, len(group))
        totals: dict[int, np.ndarray] = {}
        for part in self._threads.map(lambda lane: lane(images, labels, weights, len(group)), self._lanes):
            totals.update(part)
        return totals

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
    step = _Step(list(range(count)), models, optimizers)

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
                for number, totals in step(group, batch_size).items():
                    sums[number] += totals
                seen += sum(len(labels) for _images, labels in group)
                for number in np.flatnonzero(active):
                    logs = {"loss": sums[number, 0] / seen, "accuracy": sums[number, 1] / seen}
                    engines[number].after_batch(models[number], start + len(group), logs)
                _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone=False)
                if not active.any():
                    break
                if len(step.members) > 2 and active.sum() <= len(step.members) // 2:
                    step.close()
                    step = _Step([int(number) for number in np.flatnonzero(active)], models, optimizers)
            if not active.any():
                break
            batches.on_epoch_end()
            for number in np.flatnonzero(active):
                logs = {"loss": sums[number, 0] / seen, "accuracy": sums[number, 1] / seen, **_validation_logs(models[number], data)}
                engines[number].after_epoch(models[number], epoch, logs)
            _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone=True)
    finally:
        step.close()
    return [result for result in results if result is not None]


def _leave(active, engines, models, prepared, listeners, results, extra_tests, on_done, everyone: bool) -> None:
    """Networks that reached their target, their last epoch (at an epoch's end) or were stopped leave the pack."""
    for number in np.flatnonzero(active):
        engine = engines[number]
        if not (models[number].stop_training or (everyone and engine.done)):
            continue
        active[number] = False
        notify_phase(listeners[number], "evaluating")
        # The pack may go on computing this network as a ghost: its result is a copy of it as it is now.
        trained = score(prepared[number], _frozen_copy(models[number]), engine, engine.elapsed(), extra_tests)
        for listener in listeners[number]:
            listener.on_train_end(trained.result)
        results[number] = trained
        if on_done is not None:
            on_done(int(number), trained)


def _frozen_copy(model):
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def packed_settings(settings: TrainingSettings, **changes) -> TrainingSettings:
    """A variation of `settings` that can share its batches (tests, benchmarks)."""
    return replace(settings, **changes)
