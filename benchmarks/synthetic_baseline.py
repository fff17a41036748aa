"""Linear baselines on the synthetic AVE: how hard is a single segment?

    python benchmarks/synthetic_baseline.py            # synthetic_full's train / test splits

Fits two multinomial logistic regressions on the segment labels of the train split and
prints their segment accuracy on the test split:

* per-segment: one segment's audio (128) and its visual map averaged over the 49 cells (512);
* with video context: the same plus the video's mean of both (a crude temporal model).

Plus the majority-class rate. A per-segment linear model should be clearly worse than a model
that sees the whole video (PSP); docs/data.md, "What the synthetic AVE models", has the
measured numbers.
"""

import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

_TRAIN = flags.DEFINE_integer("train_videos", 3339, "Videos of the train split to fit on.")
_TEST = flags.DEFINE_integer("test_videos", 402, "Videos of the test split to score.")
_SEED = flags.DEFINE_integer("seed", 0, "Synthetic seed (the configs use 0).")


def _segments(split: str, size: int, seed: int):
    from tfds_ave import synthetic

    audio, visual, labels = [], [], []
    for _, video in synthetic.generate(split, size, seed):
        audio.append(video["audio"])
        visual.append(video["visual"].reshape(10, 49, 512).mean(axis=1))
        labels.append(video["segment_labels"])
    return np.concatenate([np.stack(audio), np.stack(visual)], axis=-1), np.stack(labels)


def _with_context(features: np.ndarray) -> np.ndarray:
    context = np.broadcast_to(features.mean(axis=1, keepdims=True), features.shape)
    return np.concatenate([features, context], axis=-1)


def main(argv: Sequence[str]) -> None:
    del argv
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_x, train_y = _segments("train", _TRAIN.value, _SEED.value)
    test_x, test_y = _segments("test", _TEST.value, _SEED.value)
    majority = np.bincount(train_y.reshape(-1)).argmax()
    print(f"majority class ({majority}) on test: {(test_y == majority).mean():.3f}")
    for name, transform in (("per-segment", lambda x: x), ("with video context", _with_context)):
        fit_x = transform(train_x).reshape(train_y.size, -1)
        score_x = transform(test_x).reshape(test_y.size, -1)
        scaler = StandardScaler().fit(fit_x)
        start = time.perf_counter()
        model = LogisticRegression(C=0.1, max_iter=300)
        model.fit(scaler.transform(fit_x), train_y.reshape(-1))
        accuracy = (model.predict(scaler.transform(score_x)) == test_y.reshape(-1)).mean()
        print(
            f"logistic regression, {name}: test segment accuracy {accuracy:.3f} "
            f"({_TRAIN.value} train videos, fit {time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    app.run(main)
