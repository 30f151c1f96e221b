"""The settings table: one place for each training setting's type, range, link key, widget and command-line flag."""

from __future__ import annotations

import pytest

from mnistlab.cli import build_parser, settings_from_arguments
from mnistlab.links import read_link
from mnistlab.models import PRESETS, network_text, parse_network
from mnistlab.settings import SETTING, SETTINGS, TrainingSettings, link_of, settings_from_link, settings_from_texts


def test_every_setting_is_a_field_of_the_settings_and_every_field_has_a_setting():
    from dataclasses import fields

    assert sorted(setting.name for setting in SETTINGS) == sorted(field.name for field in fields(TrainingSettings))


@pytest.mark.parametrize("setting", [setting for setting in SETTINGS if setting.kind in ("int", "float", "size", "target")], ids=lambda s: s.name)
def test_a_link_the_command_line_and_the_settings_share_one_range(setting):
    """The bounds are accepted and the values just outside them refused, the same way everywhere."""
    parser = build_parser()
    for inside in (setting.low if not setting.above_low else setting.low + 1e-6, setting.high):
        value = int(inside) if setting.kind in ("int", "size") else inside
        text = setting.write(value)
        assert setting.parse(text) == pytest.approx(value)
        assert read_link("train", {setting.link_key: text}).values if setting.link_key else True
        arguments = parser.parse_args(["train", setting.cli_flag, text, "--monitor", "accuracy"])
        assert getattr(settings_from_arguments(arguments), setting.name) == pytest.approx(value)
    outside = setting.high * 2 if setting.high else None
    for bad in (outside, -1):
        text = str(bad)
        with pytest.raises(ValueError) as refused:
            setting.parse(text)
        assert "must" in str(refused.value) or "fraction" in str(refused.value)
        if setting.link_key:
            assert read_link("train", {setting.link_key: text}).values == {}
        with pytest.raises(ValueError):
            settings_from_arguments(parser.parse_args(["train", setting.cli_flag, text]))
        with pytest.raises(ValueError):
            TrainingSettings(**{setting.name: bad, "monitor": "accuracy"})


def test_the_forms_options_lie_inside_each_settings_range():
    from mnistlab_ui.train_form import SPLITS, TARGETS

    for setting in SETTINGS:
        for option in setting.options:
            assert option is None or setting.check(option) == option
    assert all(SETTING["target_accuracy"].check(target) == target for target in TARGETS)
    assert all(SETTING["validation_split"].check(split) == split for split in SPLITS)


@pytest.mark.parametrize("text", ["abc", "12abc", "1,5.5", "", "  ", "\x00", "9" * 400])
def test_bad_text_is_refused_in_words_not_python(text):
    for setting in SETTINGS:
        if setting.optional and not text.strip():
            continue
        try:
            setting.parse(text)
        except ValueError as problem:
            message = str(problem)
            assert "invalid literal" not in message and "None" not in message and "could not convert" not in message, message


def test_settings_go_round_trip_through_a_link_and_the_command_line():
    shared = TrainingSettings(
        dataset="fashion_mnist",
        arch="custom",
        model_config=parse_network("conv16k5,dense64,dropout0.2,batchnorm,mirror"),
        target_accuracy=None,
        monitor="accuracy",
        max_epochs=7,
        batch_size=48,
        learning_rate=0.0025,
        check_every_batches=100,
        validation_split=0.2,
        normalization="keras_normalize",
        seed=7,
        train_size=2000,
    )
    link = read_link("train", link_of(shared))
    assert link.notes == ()
    assert settings_from_link(link.values) == shared
    flags = []
    for setting in SETTINGS:
        value = getattr(shared, setting.name)
        if setting.cli_flag and value is not None:
            flags += [setting.cli_flag, setting.write(value)]
    assert settings_from_arguments(build_parser().parse_args(["train", *flags])) == shared


def test_every_preset_network_reads_back_from_its_text():
    for preset in PRESETS.values():
        for dataset in ("mnist", "fashion_mnist"):
            config = preset.config_for(dataset)
            assert parse_network(network_text(config)) == config


def test_a_network_on_the_command_line_builds_your_own():
    settings = settings_from_texts({"model_config": "dense256,dense128"})
    assert settings.arch == "custom" and settings.model_config.dense_units == (256, 128)


def test_older_records_load_even_when_their_values_are_outside_todays_limits():
    old = {**TrainingSettings().to_dict(), "max_epochs": 1000, "batch_size": 4096}
    assert TrainingSettings.from_dict(old).max_epochs == 1000


def test_own_images_train_only_with_their_images_never_from_a_link_or_a_flag():
    """Issue 34: a training on a set of one's own images is given its images (`train --images`); a link or --dataset
    cannot name that dataset, which has no images of its own to load."""
    from mnistlab.datasets import OWN_IMAGES
    from mnistlab.training import prepare

    assert TrainingSettings(dataset=OWN_IMAGES).dataset == OWN_IMAGES
    link = read_link("train", {"dataset": OWN_IMAGES})
    assert "dataset" not in link.values and link.notes
    with pytest.raises(ValueError, match=r"^Dataset must be one of: mnist, fashion_mnist \(not images\)\.$"):
        settings_from_arguments(build_parser().parse_args(["train", "--dataset", OWN_IMAGES]))
    with pytest.raises(ValueError, match=r"needs them: a folder or zip with one folder of images per category \(--images\)\.$"):
        prepare(TrainingSettings(dataset=OWN_IMAGES))
