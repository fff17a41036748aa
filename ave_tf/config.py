"""Frozen, typed hyper-parameters of the two PSP networks.

The defaults are the official implementation's values (``shared/docs/reference.md`` §2–§4);
every place where the official code departs from the paper is a field, so the paper's variant
is one switch away. ``to_dict`` / ``from_dict`` give a JSON-safe round trip (infinite tau is
written as ``"inf"`` / ``"-inf"``).
"""

import dataclasses
import math
from typing import Any

AVGA_BROADCASTS = ("position", "channel")


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


@dataclasses.dataclass(frozen=True)
class PSPConfig:
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
        self_attention: the paper's SAPSP ablation: a self-attention block on each modality
            before the Bi-LSTMs.
        self_attention_heads: heads of that block.
        lstm_units: hidden size of each LSTM direction (outputs are twice this).
        psp_dim: d, the width of the PSP projections (must equal ``2 * lstm_units``).
        classifier_units: hidden width of the two-layer classifier.
        epsilon: added to row sums before l1 normalisation.
        layer_norm_epsilon: epsilon of PSP's shared LayerNorm.
    """

    tau: float = 0.099
    inclusive_threshold: bool = False
    renormalize: bool = True
    dropout: float = 0.1
    avga_broadcast: str = "position"
    self_attention: bool = False
    self_attention_heads: int = 1
    lstm_units: int = 128
    psp_dim: int = 256
    classifier_units: int = 64
    epsilon: float = 1e-8
    layer_norm_epsilon: float = 1e-6

    def __post_init__(self):
        object.__setattr__(self, "tau", parse_tau(self.tau))
        if self.avga_broadcast not in AVGA_BROADCASTS:
            raise ValueError(
                f"avga_broadcast must be one of {AVGA_BROADCASTS}; got {self.avga_broadcast!r}"
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
        values = dataclasses.asdict(self)
        values["tau"] = _tau_to_json(self.tau)
        return values

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
class FullySupervisedConfig(PSPConfig):
    """The fully supervised network (reference.md §2).

    Args:
        avps_weight: λ, the weight of the audio-visual pair similarity loss (0 turns it off).
    """

    tau: float = 0.099
    avps_weight: float = 100.0

    def __post_init__(self):
        super().__post_init__()
        if self.avps_weight < 0:
            raise ValueError(f"avps_weight must be >= 0; got {self.avps_weight}")


@dataclasses.dataclass(frozen=True)
class WeaklySupervisedConfig(PSPConfig):
    """The weakly supervised network (reference.md §3).

    Args:
        weighting_branch: multiply the segment scores by the weighting branch's weights
            (paper Eq. 5); off gives the paper's Eq. 6.
        weighting_relu: the official ReLU between the W_6 projection and the sigmoid
            (the paper's Eq. 5 has none).
    """

    tau: float = 0.095
    renormalize: bool = False
    weighting_branch: bool = True
    weighting_relu: bool = True
