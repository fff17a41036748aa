"""The PSP model's inputs, checked before any model or server sees them: float32 ``audio``
(B, 10, 128) and ``visual`` (B, 10, 7, 7, 512), finite, the same B >= 1. The in-process loader
(``ave_tf.predictors``) and the serving clients check with the same function. NumPy only.
"""

import numpy as np

from ave_tf import ave
from ave_tf.errors import UsageError

FEATURE_SHAPES = {
    "audio": (ave.NUM_SEGMENTS, ave.AUDIO_DIM),
    "visual": (ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE),
}
"""One video's feature shape per input of the ``serving_default`` signature."""


class InvalidInputError(UsageError, ValueError):
    """Inputs refused before predicting or sending (wrong shape, non-finite values)."""


def check_inputs(audio, visual) -> tuple[np.ndarray, np.ndarray]:
    """Float32 `audio` (B, 10, 128) and `visual` (B, 10, 7, 7, 512), finite; else raises
    `InvalidInputError` naming the input."""
    arrays = {}
    for name, value in (("audio", audio), ("visual", visual)):
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"{name} is not a numeric array: {error}") from None
        expected = FEATURE_SHAPES[name]
        if array.ndim != len(expected) + 1 or array.shape[1:] != expected:
            raise InvalidInputError(
                f"{name} must have shape (batch, {', '.join(map(str, expected))}); "
                f"got {array.shape}"
            )
        if not np.isfinite(array).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise InvalidInputError(f"{name} has a non-finite value (NaN or Inf) at {index}")
        arrays[name] = array
    if arrays["audio"].shape[0] != arrays["visual"].shape[0]:
        raise InvalidInputError(
            f"audio and visual disagree on the batch size: "
            f"{arrays['audio'].shape[0]} vs {arrays['visual'].shape[0]}"
        )
    if arrays["audio"].shape[0] == 0:
        raise InvalidInputError("empty batch: audio and visual hold no videos")
    return arrays["audio"], arrays["visual"]
