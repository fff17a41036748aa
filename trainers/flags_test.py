"""Flags -> TrainConfig: the official recipe by default, every model switch reachable."""

import math

import pytest
from absl import flags

from trainers import run_config
from trainers.errors import UsageError
from trainers.flags import define_train_flags, train_config_from_flags


def parse(setting, *args):
    values = flags.FlagValues()
    define_train_flags(setting, values)
    values(["prog", *args])
    return train_config_from_flags(setting, values)


def test_defaults_are_the_official_recipe():
    fully = parse("fully", "--dataset=features")
    assert (fully.epochs, fully.batch_size, fully.learning_rate, fully.adam_epsilon) == (
        300,
        128,
        1e-3,
        1e-8,
    )
    assert (fully.lr_decay_factor, fully.lr_decay_every, fully.lr_decay_until) == (0.8, 60, 170)
    assert fully.model.tau == 0.099 and fully.model.avps_weight == 100.0
    assert fully.eval_every == 5 and fully.export_dir == "saved_models"
    weakly = parse("weakly", "--dataset=features")
    assert weakly.lr_decay_every == 80 and weakly.model.tau == 0.095
    assert weakly.model.renormalize is False and weakly.model.weighting_branch is True
    assert weakly.model_dir == "runs/psp_weakly"
    assert parse("fully").epochs == run_config.SYNTHETIC_EPOCHS


def test_model_switches_and_seeds():
    config = parse(
        "fully",
        "--tau=-inf",
        "--avps_weight=0",
        "--self_attention",
        "--noinclusive_threshold",
        "--seeds=1,2,3",
        "--avga_broadcast=channel",
    )
    assert config.model.tau == -math.inf and config.model.avps_weight == 0
    assert config.model.self_attention and config.model.avga_broadcast == "channel"
    assert config.seeds == (1, 2, 3)
    assert parse("weakly", "--noweighting_branch", "--tau=off").model.tau == math.inf


@pytest.mark.parametrize(
    "args",
    [
        ["--tau=x"],
        ["--strategy=gpu"],
        ["--dataset=x"],
        ["--avga_broadcast=x"],
        ["--seeds=1,1"],
        ["--epochs=0"],
    ],
)
def test_bad_values_are_usage_errors(args):
    with pytest.raises(UsageError):
        parse("fully", *args)


def test_config_json_round_trip():
    config = parse("weakly", "--tau=-inf", "--seeds=4,5")
    again = run_config.TrainConfig.from_dict(config.to_dict())
    assert again == config
    assert again.computation() == config.replace(model_dir="elsewhere").computation()
