"""Flags -> TrainConfig: the official recipe by default, every model switch reachable."""

import dataclasses
import math
import re

import pytest
from absl import flags

from ave_tf.config import (
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    FullySupervisedConfig,
    WeaklySupervisedConfig,
)
from ave_tf.errors import UsageError
from trainers import config as run_config
from trainers.config import config_from_flags, define_flags
from trainers.schedule_test import official_loop


def parse(setting, *args, **define_args):
    values = flags.FlagValues()
    define_flags(setting, values, **define_args)
    values(["prog", *args])
    return config_from_flags(setting, values)


def test_defaults_are_the_official_recipe():
    fully = parse("fully", "--dataset=features")
    assert (fully.epochs, fully.batch_size, fully.learning_rate, fully.adam_epsilon) == (
        300,
        128,
        1e-3,
        1e-8,
    )
    assert (fully.lr_decay_factor, fully.lr_decay_every, fully.lr_decay_until) == (0.8, 60, 170)
    assert fully.setting == "fully" and fully.deterministic is False
    assert fully.model.tau == 0.099 and fully.model.avps_weight == 100.0
    assert fully.eval_every == 5 and fully.export_dir == "saved_models"
    weakly = parse("weakly", "--dataset=features")
    assert weakly.lr_decay_every == 80 and weakly.model.tau == 0.095
    assert weakly.lr_decay_until == 200 and weakly.setting == "weakly"
    assert weakly.model.renormalize is False and weakly.model.weighting_branch is True
    assert weakly.model_dir == "runs/psp_weakly"
    assert parse("fully").epochs == run_config.SYNTHETIC_EPOCHS


def test_model_switches_and_seeds():
    config = parse(
        "fully",
        "--tau=-inf",
        "--avps_weight=0",
        "--self_attention=transformer",
        "--noinclusive_threshold",
        "--seeds=1,2,3",
        "--avga_broadcast=channel",
    )
    assert config.model.tau == -math.inf and config.model.avps_weight == 0
    assert config.model.self_attention == "transformer" and config.model.avga_broadcast == "channel"
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
    flag = args[0].split("=")[0]
    with pytest.raises(UsageError, match=flag):
        parse("fully", *args)


def test_weakly_decay_bound_is_the_official_200_with_the_same_decay_epochs():
    # The official weak script decays while epoch < 200, the fully one while epoch < 170;
    # with a period of 80 both bounds decay after 0-based epochs 79 and 159 only.
    official = official_loop(300, 1.0, every=80, until=200)
    assert official == official_loop(300, 1.0, every=80, until=170)
    decays = [e for e in range(1, 300) if official[e] != official[e - 1]]
    assert decays == [80, 160]
    assert run_config.DECAY_UNTIL == {"fully": 170, "weakly": 200}


def test_one_flag_per_config_field_from_the_dataclasses():
    values = flags.FlagValues()
    define_flags("weakly", values)
    recipe = {f.name for f in dataclasses.fields(run_config.TrainConfig)} - {"model"}
    model = {
        f.name
        for config_class in (WeaklySupervisedConfig, AVELWeaklySupervisedConfig)
        for f in dataclasses.fields(config_class)
    }
    assert set(values) == recipe | model | {"seed", "model"}
    # Every recipe flag reaches its field.
    changed = parse(
        "fully",
        "--learning_rate=0.5",
        "--adam_epsilon=0.25",
        "--lr_decay_until=7",
        "--deterministic",
        "--jit_compile",
        "--train_split=train[:8]",
        "--export_dir=",
        "--batch_size=4",
    )
    assert (changed.learning_rate, changed.adam_epsilon, changed.lr_decay_until) == (0.5, 0.25, 7)
    assert changed.deterministic and changed.jit_compile and changed.export_dir == ""
    assert (changed.train_split, changed.batch_size) == ("train[:8]", 4)


def test_recipe_flags_without_model_switches_give_the_setting_defaults():
    # What trainers.ablate defines: no model flags, several settings, seeds 1,2,3 by default.
    values = flags.FlagValues()
    define_flags(None, values, exclude=("model_dir",), defaults={"seeds": (1, 2, 3)})
    values(["prog", "--epochs=3"])
    assert "model_dir" not in values and "tau" not in values and "seed" not in values
    fully, weakly = (config_from_flags(s, values) for s in ("fully", "weakly"))
    assert fully.model == FullySupervisedConfig() and weakly.model == WeaklySupervisedConfig()
    assert (fully.lr_decay_every, weakly.lr_decay_every) == (60, 80)
    assert fully.seeds == weakly.seeds == (1, 2, 3) and fully.epochs == 3


def test_setting_is_the_model_type():
    assert run_config.TrainConfig(model=WeaklySupervisedConfig()).setting == "weakly"
    assert run_config.TrainConfig().model_dir == "runs/psp_fully"
    with pytest.raises(ValueError, match="model must be"):
        run_config.TrainConfig(model=object())


def test_config_json_round_trip():
    config = parse("weakly", "--tau=-inf", "--seeds=4,5")
    again = run_config.TrainConfig.from_dict(config.to_dict())
    assert again == config
    assert again.computation() == config.replace(model_dir="elsewhere").computation()


def test_model_avel_takes_avels_defaults_and_the_shared_switches():
    fully = parse("fully", "--model=avel")
    assert fully.model == AVELFullySupervisedConfig()  # avps_weight 0, not PSP's 100
    assert (fully.network, fully.model_dir, fully.export_name) == (
        "avel",
        "runs/avel_fully",
        "avel_fully",
    )
    assert fully.lr_decay_every == 60  # The recipe is the trainers' for both networks.
    assert parse("fully", "--model=avel", "--avps_weight=100").model.avps_weight == 100.0
    weakly = parse("weakly", "--model=avel", "--weighting_branch", "--video_pooling=mean")
    assert weakly.model == AVELWeaklySupervisedConfig(weighting_branch=True, video_pooling="mean")
    assert parse("weakly", "--model=avel").model.weighting_branch is False
    assert parse("weakly", "--model=avel", "--model_dir=x").model_dir == "x"
    # PSP keeps its own defaults next to the AVEL-only switch.
    assert parse("weakly").model == WeaklySupervisedConfig()
    again = run_config.TrainConfig.from_dict(weakly.to_dict())
    assert again == weakly and type(again.model) is AVELWeaklySupervisedConfig


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=avel", "--tau=0.5"], "--tau does not apply to --model=avel"),
        (["--model=avel", "--dropout=0.2"], "--dropout does not apply to --model=avel"),
        (["--video_pooling=mean"], "--video_pooling does not apply to --model=psp"),
        (["--model=avel", "--video_pooling=x"], "--video_pooling must be one of"),
        (["--model=cnn"], "--model"),
    ],
)
def test_switches_a_network_lacks_are_usage_errors(args, message):
    with pytest.raises((UsageError, flags.IllegalFlagValueError), match=message):
        parse("weakly", *args)


def test_help_says_which_network_a_switch_belongs_to():
    values = flags.FlagValues()
    define_flags("fully", values)
    assert "psp only" in values["tau"].help
    assert "default: 100.0 for psp, 0.0 for avel" in values["avps_weight"].help
    assert values["model"].default == "psp"


@pytest.mark.parametrize("setting", ["fully", "weakly"])
def test_help_states_one_default_per_switch(setting):
    """``--help`` (absl's rendering) states each switch's default once, and rightly."""
    values = flags.FlagValues()
    define_flags(setting, values)
    entries = re.split(r"\n  --(?:\[no\])?", values.get_help())
    for name, (_, defaults) in run_config.model_switches(setting).items():
        (entry,) = [entry for entry in entries if entry.startswith(f"{name}:")]
        entry = " ".join(entry.split())
        assert entry.count("default:") == 1, entry
        if len(set(map(str, defaults.values()))) > 1:
            listed = ", ".join(f"{value} for {model}" for model, value in defaults.items())
            assert f"(default: {listed})" in entry
        else:
            value = next(iter(defaults.values()))
            shown = str(value).lower() if isinstance(value, bool) else value
            assert f"(default: '{shown}')" in entry
