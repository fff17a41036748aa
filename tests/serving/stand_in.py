"""A tiny functional Keras model with the PSP models' dict inputs and outputs (tests only)."""

import keras

from ave_tf import ave


def stand_in_model(seed: int = 0) -> keras.Model:
    """Dict inputs audio (B,10,128), visual (B,10,7,7,512); outputs like fully_supervised_model."""
    audio = keras.Input((ave.NUM_SEGMENTS, ave.AUDIO_DIM), name="audio")
    visual = keras.Input((ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), name="visual")
    pooled = keras.layers.Reshape((ave.NUM_SEGMENTS, -1, ave.VISUAL_SHAPE[-1]))(visual)
    pooled = keras.ops.mean(pooled, axis=2)
    init = keras.initializers.GlorotUniform(seed=seed)
    joint = keras.layers.Concatenate()([audio, pooled])
    hidden = keras.layers.Dense(16, activation="relu", kernel_initializer=init)(joint)
    logits = keras.layers.Dense(ave.NUM_CLASSES, kernel_initializer=init, name="logits")(hidden)
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    similarity = keras.layers.Dense(1, kernel_initializer=init)(hidden)[..., 0]
    return keras.Model(
        {"audio": audio, "visual": visual},
        {
            "segment_logits": logits,
            "segment_probabilities": probabilities,
            "av_similarity": similarity,
        },
    )
