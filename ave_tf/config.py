"""Frozen, typed hyper-parameters of the PSP networks and of the AVEL baseline.

The PSP defaults are the official implementation's values (``shared/docs/reference.md``
§2–§4); every place where the official code departs from the paper is a field, so the paper's
variant is one switch away. The AVEL defaults are the ``att_Net`` of YapengTian/AVE-ECCV18 (the
baseline of the paper's Tables 2 and 4). ``to_dict`` / ``from_dict`` give a JSON-safe round
trip (infinite tau is written as ``"inf"`` / ``"-inf"``).
"""

import dataclasses
import math
from typing import Any, ClassVar

AVGA_BROADCASTS = ("position", "channel")
SELF_ATTENTIONS = ("off", "official", "transformer")
"""SAPSP forms: none, the released code's ``SelfAttention``, a Transformer attention block."""
VIDEO_POOLINGS = ("max", "mean")


def parse_tau(value: float | str) -> float:
    """Turns a tau given as a number or as "inf", "-inf", "off" (= +inf) into a float."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "off":
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"tau must be a number, 'inf', '-inf' or 'off'; got {value!r}"
            ) from None
    value = float(value)
    if math.isnan(value):
        raise ValueError("tau must not be NaN")
    return value


def _tau_to_json(tau: float) -> float | str:
    return str(tau) if math.isinf(tau) else tau


def _check_avga_broadcast(value: str) -> None:
    if value not in AVGA_BROADCASTS:
        raise ValueError(f"avga_broadcast must be one of {AVGA_BROADCASTS}; got {value!r}")


def _check_avps_weight(value: float) -> None:
    if value < 0:
        raise ValueError(f"avps_weight must be >= 0; got {value}")


@dataclasses.dataclass(frozen=True)
class _JSONConfig:
    """JSON round trip and copies shared by every model config."""

    MODEL: ClassVar[str]
    """``"psp"`` or ``"avel"``."""
    SETTING: ClassVar[str]
    """``"fully"`` or ``"weakly"`` supervised."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
        return cls(**values)

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class PSPConfig(_JSONConfig):
    """Hyper-parameters shared by the fully and the weakly supervised networks.

    Args:
        tau: PSP threshold τ on the row-normalised similarities β. ``-inf`` keeps every
            connection (the paper's ASP), ``0`` removes only negatives (WPSP), ``inf``
            (or ``"off"``) propagates nothing (w/o PSP).
        inclusive_threshold: keep entries with β >= τ (the paper's Eq. 2) instead of the
            official β > τ.
        renormalize: l1-normalise the rows of γ again after thresholding (Eq. 2's last step).
        dropout: dropout rate inside PSP (the only dropout of the network).
        avga_broadcast: how AVGA adds the 49-vector computed from the audio to the visual
            content: ``"position"`` (official code, indexed by the spatial position) or
            ``"channel"`` (the AVEL paper's intent, indexed by the output unit).
        self_attention: the paper's SAPSP ablation, a self-attention block on each modality
            before the Bi-LSTMs: ``"off"`` (default: the official network has none),
            ``"official"`` (``SymmetricSelfAttention``, the ``SelfAttention`` class the released
            code defines) or ``"transformer"`` (``SegmentSelfAttention``, a Transformer
            attention sub-layer). ``True`` / ``False`` (configs written before the official
            form existed) mean ``"transformer"`` / ``"off"``.
        self_attention_heads: heads of the ``"transformer"`` block.
        lstm_units: hidden size of each LSTM direction (outputs are twice this).
        psp_dim: d, the width of the PSP projections (must equal ``2 * lstm_units``).
        classifier_units: hidden width of the two-layer classifier.
        epsilon: added to row sums before l1 normalisation.
        layer_norm_epsilon: epsilon of PSP's shared LayerNorm.
    """

    MODEL = "psp"

    tau: float = 0.099
    inclusive_threshold: bool = False
    renormalize: bool = True
    dropout: float = 0.1
    avga_broadcast: str = "position"
    self_attention: str = "off"
    self_attention_heads: int = 1
    lstm_units: int = 128
    psp_dim: int = 256
    classifier_units: int = 64
    epsilon: float = 1e-8
    layer_norm_epsilon: float = 1e-6

    def __post_init__(self):
        object.__setattr__(self, "tau", parse_tau(self.tau))
        _check_avga_broadcast(self.avga_broadcast)
        if isinstance(self.self_attention, bool):
            form = "transformer" if self.self_attention else "off"
            object.__setattr__(self, "self_attention", form)
        if self.self_attention not in SELF_ATTENTIONS:
            raise ValueError(
                f"self_attention must be one of {SELF_ATTENTIONS}; got {self.self_attention!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.psp_dim != 2 * self.lstm_units:
            raise ValueError(
                f"psp_dim ({self.psp_dim}) must equal 2 * lstm_units ({2 * self.lstm_units}): "
                "PSP's residual adds its projections to the Bi-LSTM outputs"
            )
        for name in ("lstm_units", "classifier_units", "self_attention_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        values = super().to_dict()
        values["tau"] = _tau_to_json(self.tau)
        return values


@dataclasses.dataclass(frozen=True)
class FullySupervisedConfig(PSPConfig):
    """The fully supervised network (reference.md §2).

    Args:
        avps_weight: λ, the weight of the audio-visual pair similarity loss (0 turns it off).
    """

    SETTING = "fully"

    tau: float = 0.099
    avps_weight: float = 100.0

    def __post_init__(self):
        super().__post_init__()
        _check_avps_weight(self.avps_weight)


@dataclasses.dataclass(frozen=True)
class WeaklySupervisedConfig(PSPConfig):
    """The weakly supervised network (reference.md §3).

    Args:
        weighting_branch: multiply the segment scores by the weighting branch's weights
            (paper Eq. 5); off gives the paper's Eq. 6.
        weighting_relu: the official ReLU between the W_6 projection and the sigmoid
            (the paper's Eq. 5 has none).
    """

    SETTING = "weakly"

    tau: float = 0.095
    renormalize: bool = False
    weighting_branch: bool = True
    weighting_relu: bool = True


@dataclasses.dataclass(frozen=True)
class AVELConfig(_JSONConfig):
    """Hyper-parameters shared by both AVEL networks (``att_Net``, Tian et al., ECCV 2018).

    Args:
        avga_broadcast: AVGA's broadcast of the audio's 49-vector (see ``PSPConfig``);
            ``att_Net`` computes the same ``"position"`` broadcast as the PSP code.
        lstm_units: hidden size of each LSTM direction (``att_Net``: 128).
        classifier_units: hidden width of the two-layer classifier (``att_Net``: 64).
        epsilon: lower bound of the cosine similarity's norm product (AVPS).
    """

    MODEL = "avel"

    avga_broadcast: str = "position"
    lstm_units: int = 128
    classifier_units: int = 64
    epsilon: float = 1e-8

    def __post_init__(self):
        _check_avga_broadcast(self.avga_broadcast)
        for name in ("lstm_units", "classifier_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class AVELFullySupervisedConfig(AVELConfig):
    """The fully supervised AVEL network.

    Args:
        avps_weight: λ of PSP's AVPS loss on AVEL's Bi-LSTM outputs (default 0: AVEL as
            published; the paper's Table 2 "L_ce + λ L_avps" row uses 100).
    """

    SETTING = "fully"

    avps_weight: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _check_avps_weight(self.avps_weight)


@dataclasses.dataclass(frozen=True)
class AVELWeaklySupervisedConfig(AVELConfig):
    """The weakly supervised AVEL network.

    Args:
        weighting_branch: PSP's weighting branch on the segment scores (default False: AVEL
            as published; the paper's Table 2 "w/ weight. branch" row turns it on).
        weighting_relu: the PSP code's ReLU before the branch's sigmoid (see
            ``WeaklySupervisedConfig``).
        video_pooling: how segment scores become video scores before the softmax: ``"max"``
            over the 10 segments (default, ``att_Net``'s weak variant) or ``"mean"`` (PSP's
            Eq. 5-6).
    """

    SETTING = "weakly"

    weighting_branch: bool = False
    weighting_relu: bool = True
    video_pooling: str = "max"

    def __post_init__(self):
        super().__post_init__()
        if self.video_pooling not in VIDEO_POOLINGS:
            raise ValueError(
                f"video_pooling must be one of {VIDEO_POOLINGS}; got {self.video_pooling!r}"
            )


MODEL_CONFIGS = {
    (config.MODEL, config.SETTING): config
    for config in (
        FullySupervisedConfig,
        WeaklySupervisedConfig,
        AVELFullySupervisedConfig,
        AVELWeaklySupervisedConfig,
    )
}
"""``(model, setting)`` -> config class, e.g. ``("avel", "weakly")``."""


def model_config_class(model: str, setting: str) -> type:
    """The config class of ``model`` (``"psp"`` / ``"avel"``) in ``setting`` (``"fully"`` /
    ``"weakly"``); a ValueError names a bad value."""
    try:
        return MODEL_CONFIGS[(model, setting)]
    except KeyError:
        raise ValueError(
            f"no model config for model={model!r}, setting={setting!r}; "
            f"known: {sorted(MODEL_CONFIGS)}"
        ) from None
