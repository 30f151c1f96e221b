"""The optimiser and learning-rate schedule of a recipe, and compiling a model with them.

Presets train with Adam or AdamW, at a constant learning rate or with a one-cycle
schedule: a warm-up over the first quarter of the steps, then a cosine decay.
"""

from __future__ import annotations

from mnistlab.models import Recipe


def one_cycle(peak: float, steps_total: int):
    """The one-cycle schedule: from peak / 20 up to `peak` over the first quarter of the steps, then a cosine down to 1% of it."""
    import keras

    warmup = max(1, int(0.25 * steps_total))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 20, decay_steps=max(1, steps_total - warmup), alpha=0.01, warmup_target=peak, warmup_steps=warmup
    )


def make_optimizer(recipe: Recipe, steps_total: int):
    """Adam or AdamW, with a constant or a one-cycle (warm-up, then cosine decay) learning rate."""
    import keras

    learning_rate = one_cycle(recipe.learning_rate, steps_total) if recipe.schedule == "one_cycle" else recipe.learning_rate
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=1e-4)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_model(model, recipe: Recipe, steps_total: int) -> None:
    """Compile for training on integer labels, reporting accuracy."""
    model.compile(
        optimizer=make_optimizer(recipe, steps_total),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=recipe.steps_per_execution,
    )
