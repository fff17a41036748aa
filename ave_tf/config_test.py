"""Config dataclasses: official defaults, JSON round trip, tau parsing, bad values."""

import json
import math

import pytest

from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig, parse_tau


def test_official_defaults():
    fully, weakly = FullySupervisedConfig(), WeaklySupervisedConfig()
    assert (fully.tau, fully.renormalize, fully.avps_weight) == (0.099, True, 100.0)
    assert (weakly.tau, weakly.renormalize, weakly.weighting_relu) == (0.095, False, True)
    assert fully.avga_broadcast == weakly.avga_broadcast == "position"
    assert not fully.inclusive_threshold and fully.dropout == 0.1


@pytest.mark.parametrize("config_class", [FullySupervisedConfig, WeaklySupervisedConfig])
@pytest.mark.parametrize("tau", [0.1, -math.inf, math.inf])
def test_json_round_trip(config_class, tau):
    config = config_class(tau=tau, self_attention=True)
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
