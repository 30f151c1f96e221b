"""Training settings: what to train and how, checked when they are made.

`TrainingSettings` is a frozen dataclass; every value a student can choose is checked
in `__post_init__`, so impossible settings raise a `ValueError` that says what is
allowed before anything is loaded or trained. Unset numbers (None) take the preset's
recipe, and `recipe_for` gives the recipe a run actually uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

from mnistlab.datasets import NORMALIZATIONS, get_info
from mnistlab.i18n import N_, _
from mnistlab.models import ConvBlock, ModelConfig, Recipe, get_preset

MONITORS = {
    "accuracy": N_("training accuracy"),
    "val_accuracy": N_("validation accuracy"),
}
# The recipe of a network built on the "build your own" form.
CUSTOM_RECIPE = Recipe(batch_size=128, learning_rate=0.001, max_epochs=5)


@dataclass(frozen=True)
class TrainingSettings:
    """What to train and how. Unset numbers (None) take the preset's recipe."""

    dataset: str = "mnist"
    arch: str = "dense"  # a preset name, or "custom" with model_config
    model_config: ModelConfig | None = None
    target_accuracy: float | None = 0.99
    monitor: str = "val_accuracy"
    check_every_batches: int = 0  # 0: check the target only at the end of each epoch
    max_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    validation_split: float = 0.1
    normalization: str = "divide_255"
    seed: int = 42
    train_size: int | None = None  # train on a balanced subset (quick runs, tests)
    test_size: int | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        get_info(self.dataset)
        if self.arch == "custom":
            if self.model_config is None:
                raise ValueError(_("A custom architecture needs a model configuration."))
        else:
            get_preset(self.arch)
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise ValueError(_("The target accuracy must be above 0 and at most 1 (0.99 means 99%), got {value}.").format(value=self.target_accuracy))
        if self.monitor not in MONITORS:
            raise ValueError(_("The watched accuracy must be 'accuracy' or 'val_accuracy', got {value!r}.").format(value=self.monitor))
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(_("Train for at least 1 epoch, got {value}.").format(value=self.max_epochs))
        if self.max_epochs is not None and self.max_epochs > 1000:
            raise ValueError(_("At most 1000 epochs, got {value}.").format(value=self.max_epochs))
        if self.batch_size is not None and not 1 <= self.batch_size <= 4096:
            raise ValueError(_("The batch size must be at least 1 and at most 4096, got {value}.").format(value=self.batch_size))
        if self.learning_rate is not None and not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(_("The learning rate must be above 0 and at most 1, got {value}.").format(value=self.learning_rate))
        if not 0.0 <= self.validation_split < 0.9:
            raise ValueError(_("The validation split is a fraction from 0 to 0.9, got {value}.").format(value=self.validation_split))
        if self.monitor == "val_accuracy" and self.validation_split == 0.0:
            raise ValueError(_("Watching validation accuracy needs some validation data: set a validation split above 0."))
        if self.check_every_batches < 0:
            raise ValueError(_("Check every N batches needs N >= 0 (0 means at epoch end), got {value}.").format(value=self.check_every_batches))
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                _("Unknown normalisation {name!r}. Choose one of: {choices}.").format(name=self.normalization, choices=", ".join(NORMALIZATIONS))
            )
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 10:
                raise ValueError(_("{what} must be at least 10 images, got {value}.").format(what=name.replace("_", " "), value=value))

    @property
    def base_recipe(self) -> Recipe:
        return CUSTOM_RECIPE if self.arch == "custom" else get_preset(self.arch).recipe

    def recipe_for(self, train_images: int) -> Recipe:
        """The preset's recipe for a training set of this size, with this run's overrides applied."""
        base = self.base_recipe.for_size(train_images)
        return replace(
            base,
            batch_size=self.batch_size or base.batch_size,
            learning_rate=self.learning_rate or base.learning_rate,
            max_epochs=self.max_epochs or base.max_epochs,
            small_data=None,
        )

    @property
    def config(self) -> ModelConfig:
        if self.arch == "custom":
            return self.model_config  # type: ignore[return-value]
        return get_preset(self.arch).config_for(self.dataset)

    def to_dict(self) -> dict:
        """Plain JSON-ready values (the runs database stores settings this way)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingSettings:
        """The settings `to_dict` wrote; unknown keys are ignored, so older records still load."""
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        config = values.get("model_config")
        if isinstance(config, dict):
            blocks = tuple(ConvBlock(**block) for block in config.get("conv_blocks", ()))
            config_fields = {field.name for field in fields(ModelConfig)}
            values["model_config"] = ModelConfig(
                **{
                    **{key: value for key, value in config.items() if key in config_fields},
                    "conv_blocks": blocks,
                    "dense_units": tuple(config.get("dense_units", (128,))),
                }
            )
        return cls(**values)


def quick_model_settings(dataset: str) -> TrainingSettings:
    """The one seeded recipe of a page's "quick model" for `dataset`: the fast CNN, no target, its own epochs."""
    return TrainingSettings(dataset=dataset, arch="fast_cnn", target_accuracy=None, seed=42)


def recipe_key(settings: TrainingSettings) -> str:
    """A short key that is the same for the same settings: runs everyone shares are found by it."""
    text = json.dumps(settings.to_dict(), sort_keys=True, default=str)
    return f"{settings.dataset}:{settings.arch}:" + hashlib.sha256(text.encode()).hexdigest()[:16]
