"""Config dataclasses: official defaults, JSON round trip, tau parsing, bad values."""

import json
import math

import pytest

from ave_tf.config import (
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    FullySupervisedConfig,
    WeaklySupervisedConfig,
    model_config_class,
    parse_tau,
)


def test_official_defaults():
    fully, weakly = FullySupervisedConfig(), WeaklySupervisedConfig()
    assert (fully.tau, fully.renormalize, fully.avps_weight) == (0.099, True, 100.0)
    assert (weakly.tau, weakly.renormalize, weakly.weighting_relu) == (0.095, False, True)
    assert fully.avga_broadcast == weakly.avga_broadcast == "position"
    assert not fully.inclusive_threshold and fully.dropout == 0.1


@pytest.mark.parametrize("config_class", [FullySupervisedConfig, WeaklySupervisedConfig])
@pytest.mark.parametrize("tau", [0.1, -math.inf, math.inf])
def test_json_round_trip(config_class, tau):
    config = config_class(tau=tau, self_attention="official")
    text = json.dumps(config.to_dict(), allow_nan=False)
    assert config_class.from_dict(json.loads(text)) == config


def test_tau_words():
    assert parse_tau("off") == math.inf and parse_tau("-inf") == -math.inf
    assert parse_tau("0.095") == 0.095
    with pytest.raises(ValueError, match="tau"):
        parse_tau("often")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"avga_broadcast": "rows"}, "avga_broadcast"),
        ({"dropout": 1.5}, "dropout"),
        ({"psp_dim": 100}, "psp_dim"),
        ({"avps_weight": -1}, "avps_weight"),
    ],
)
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        FullySupervisedConfig(**changes)


def test_unknown_fields_are_named():
    with pytest.raises(ValueError, match="weighting_branch"):
        FullySupervisedConfig.from_dict({"weighting_branch": False})


@pytest.mark.parametrize("old, form", [(True, "transformer"), (False, "off")])
def test_boolean_self_attention_of_older_configs_still_loads(old, form):
    values = FullySupervisedConfig().to_dict() | {"self_attention": old}
    config = FullySupervisedConfig.from_dict(json.loads(json.dumps(values)))
    assert config.self_attention == form
    assert config.to_dict()["self_attention"] == form
    assert WeaklySupervisedConfig(self_attention=old).self_attention == form


def test_self_attention_forms():
    assert FullySupervisedConfig().self_attention == "off"
    assert FullySupervisedConfig(self_attention="official").self_attention == "official"
    with pytest.raises(ValueError, match="self_attention"):
        FullySupervisedConfig(self_attention="on")


def test_avel_defaults_are_att_nets():
    fully, weakly = AVELFullySupervisedConfig(), AVELWeaklySupervisedConfig()
    assert fully.avps_weight == 0.0 and fully.avga_broadcast == "position"
    assert (weakly.weighting_branch, weakly.weighting_relu, weakly.video_pooling) == (
        False,
        True,
        "max",
    )
    assert fully.lstm_units == 128 and fully.classifier_units == 64


@pytest.mark.parametrize(
    "config",
    [
        AVELFullySupervisedConfig(avps_weight=100.0, avga_broadcast="channel"),
        AVELWeaklySupervisedConfig(weighting_branch=True, video_pooling="mean"),
    ],
)
def test_avel_json_round_trip(config):
    text = json.dumps(config.to_dict(), allow_nan=False)
    assert type(config).from_dict(json.loads(text)) == config


@pytest.mark.parametrize(
    "config_class, changes, field",
    [
        (AVELFullySupervisedConfig, {"avps_weight": -1.0}, "avps_weight"),
        (AVELFullySupervisedConfig, {"avga_broadcast": "rows"}, "avga_broadcast"),
        (AVELWeaklySupervisedConfig, {"video_pooling": "sum"}, "video_pooling"),
        (AVELWeaklySupervisedConfig, {"lstm_units": 0}, "lstm_units"),
    ],
)
def test_bad_avel_values_name_the_field(config_class, changes, field):
    with pytest.raises(ValueError, match=field):
        config_class(**changes)


def test_avel_configs_refuse_psp_fields():
    with pytest.raises(ValueError, match="tau"):
        AVELFullySupervisedConfig.from_dict({"tau": 0.095})


def test_model_config_class():
    assert model_config_class("psp", "fully") is FullySupervisedConfig
    assert model_config_class("avel", "weakly") is AVELWeaklySupervisedConfig
    assert AVELWeaklySupervisedConfig.MODEL == "avel" and WeaklySupervisedConfig.SETTING == "weakly"
    with pytest.raises(ValueError, match="avl"):
        model_config_class("avl", "fully")
