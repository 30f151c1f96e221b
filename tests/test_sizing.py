"""A network's size from its description: the same layers, shapes and parameters as the Keras model, and the server's limits."""

from __future__ import annotations

import pytest

from mnistlab.models import PRESETS, build_model, model_summary, parse_network
from mnistlab.sizing import Limits, Speed, check_size, epoch_seconds, layer_sizes, parameter_count

NETWORKS = [preset.config_for(dataset) for preset in PRESETS.values() for dataset in ("mnist", "fashion_mnist")] + [
    parse_network("conv8k5x2samenopool,conv16k7,dense32,dense16,dropout0.2,augment,mirror,gelu"),
    parse_network("conv16x3,conv32x2same,conv8k1nopool,dense64,batchnorm,tanh"),
    parse_network("dense512,dense256,dense128"),
]


@pytest.mark.parametrize("config", NETWORKS, ids=lambda config: str(len(layer_sizes(config))))
def test_sizes_match_the_keras_model_layer_by_layer(config):
    keras_rows = [
        (row.name, row.kind.replace("FusedBatchNormalization", "BatchNormalization"), row.output_shape, row.parameters)
        for row in model_summary(build_model(config))
    ]
    assert keras_rows == [(row.name, row.kind, row.shape_text, row.parameters) for row in layer_sizes(config)]


def test_the_72_million_parameter_network_is_refused_before_anything_is_built():
    config = parse_network("dense4096,dense4096,dense4096,dense4096")
    assert parameter_count(config) > 50_000_000
    with pytest.raises(ValueError, match=r"this server trains at most 3,000,000 for a class. Make it smaller: dense_2 alone has"):
        check_size(config, 54_000, 32)


def test_a_network_whose_epoch_would_take_too_long_is_refused_with_what_to_change():
    config = parse_network("conv128x3samenopool,conv128same,dense64")
    assert parameter_count(config) < 3_000_000
    with pytest.raises(ValueError, match=r"One epoch of this network would take about .* s here; this server allows 120 s an epoch"):
        check_size(config, 54_000, 32)


def test_the_presets_fit_the_default_limits():
    for preset in PRESETS.values():
        check_size(preset.config_for("fashion_mnist"), 54_000, preset.recipe.batch_size)


def test_an_epoch_estimate_follows_the_servers_measured_speed():
    config = PRESETS["fast_cnn"].config
    slower = Speed(scale=2.0)
    assert epoch_seconds(config, 54_000, 128, slower) == pytest.approx(2 * epoch_seconds(config, 54_000, 128))
    assert epoch_seconds(config, 54_000, 128) > epoch_seconds(PRESETS["dense"].config, 54_000, 128)
    with pytest.raises(ValueError):
        check_size(config, 54_000, 128, Limits(max_epoch_seconds=1.0))
