"""The fully supervised PSP network (reference.md §2)."""

import keras

from ave_tf.config import FullySupervisedConfig
from ave_tf.layers import SegmentCosineSimilarity
from ave_tf.models import network


def fully_supervised_model(
    config: FullySupervisedConfig = FullySupervisedConfig(), with_internals: bool = False
) -> keras.Model:
    """Builds the fully supervised PSP network.

    audio -> two-layer projection (fa) -> AVGA with the visual maps -> two-layer visual
    projection (fv) -> Bi-LSTMs -> PSP (with W3, shared LayerNorm) -> mean fusion -> classifier.

    Args:
        config: hyper-parameters; the defaults are the official ones.
        with_internals: also output the intermediate tensors (see ``expose_internals``).

    Returns:
        A functional model. Inputs: ``audio`` (batch, 10, 128), ``visual``
        (batch, 10, 7, 7, 512). Outputs: ``segment_logits`` (batch, 10, 29),
        ``segment_probabilities`` (batch, 10, 29), ``av_similarity`` (batch, 10).
    """
    if not isinstance(config, FullySupervisedConfig):
        raise TypeError(f"config must be a FullySupervisedConfig; got {type(config).__name__}")
    inputs = network.model_inputs()
    audio = network.two_layer_projection(inputs["audio"], "audio_projection")
    attended = network.attend(config, audio, inputs["visual"])
    visual = network.two_layer_projection(attended, "visual_projection")
    psp = network.propagate(config, audio, visual, output_projection=True)
    logits = network.classify(config, psp)
    outputs = {
        "segment_logits": logits,
        "segment_probabilities": keras.layers.Softmax(name="segment_probabilities")(logits),
        "av_similarity": SegmentCosineSimilarity(config.epsilon, name="av_similarity")(
            psp["visual"], psp["audio"]
        ),
    }
    model = keras.Model(inputs, outputs, name="psp_fully")
    return network.expose_internals(model) if with_internals else model
