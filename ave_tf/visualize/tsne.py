"""t-SNE of the audio and visual features at three stages (the paper's Fig. 5).

One point per segment, coloured by its class. Stages: the input features (the visual map
averaged over its 7x7 positions), the Bi-LSTM outputs, the PSP outputs (an AVEL model, which
has no PSP, gets the first two).
"""

import dataclasses

import numpy as np

from ave_tf import ave
from ave_tf.errors import UsageError
from ave_tf.visualize import figures

SIZE_INCHES = (13.0, 8.5)
STAGES = ("input", "bi-lstm", "psp")
MODALITIES = ("audio", "visual")
OUTPUT_NAMES = {
    ("audio", "bi-lstm"): "audio_lstm",
    ("visual", "bi-lstm"): "visual_lstm",
    ("audio", "psp"): "audio_psp",
    ("visual", "psp"): "visual_psp",
}


class PerplexityError(UsageError, ValueError):
    """A perplexity t-SNE cannot use (the message says why)."""


class TooFewSamplesError(PerplexityError):
    """t-SNE was asked for more neighbours (perplexity) than there are points."""


def check_perplexity(samples: int, perplexity: float) -> None:
    """Refuses ``samples`` points for ``perplexity`` (scikit-learn needs perplexity < samples)."""
    if perplexity <= 0:
        raise PerplexityError(f"perplexity must be > 0; got {perplexity}")
    if samples <= perplexity:
        raise TooFewSamplesError(
            f"t-SNE with perplexity {perplexity:g} needs more than {perplexity:g} points; got "
            f"{samples} segments ({samples // ave.NUM_SEGMENTS} videos x {ave.NUM_SEGMENTS}). "
            "Pass more videos or a smaller --perplexity."
        )


@dataclasses.dataclass(frozen=True)
class FeatureStages:
    """Per-segment features to embed.

    Attributes:
        features: ``(modality, stage)`` -> (points, dim) features, one row per segment.
        labels: (points,) class of each segment.
    """

    features: dict[tuple[str, str], np.ndarray]
    labels: np.ndarray


def prepare_stages(audio, visual, internals: dict, segment_labels) -> FeatureStages:
    """Flattens videos x segments into points at the three stages.

    Args:
        audio: (videos, 10, 128) input audio.
        visual: (videos, 10, 7, 7, 512) input visual maps (averaged over 7x7 here).
        internals: model outputs with ``audio_lstm``, ``visual_lstm`` and, for PSP,
            ``audio_psp``, ``visual_psp`` (videos, 10, 256).
        segment_labels: (videos, 10) classes.
    """
    audio = np.asarray(audio, dtype=np.float64)
    visual = np.asarray(visual, dtype=np.float64)
    points = audio.shape[0] * audio.shape[1]
    features = {
        ("audio", "input"): audio.reshape(points, -1),
        ("visual", "input"): visual.mean(axis=(2, 3)).reshape(points, -1),
    }
    has_psp = all(name in internals for (_, stage), name in OUTPUT_NAMES.items() if stage == "psp")
    for key, name in OUTPUT_NAMES.items():
        if key[1] == "psp" and not has_psp:
            continue  # AVEL: no PSP stage.
        if name not in internals:
            raise ValueError(f"model outputs lack {name!r}; expose the internals first")
        features[key] = np.asarray(internals[name], dtype=np.float64).reshape(points, -1)
    return FeatureStages(features, np.asarray(segment_labels).reshape(points).astype(np.int64))


def embed(features: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """(points, 2) t-SNE embedding of (points, dim) ``features`` (PCA initialisation)."""
    from sklearn.manifold import TSNE  # scikit-learn (optional, [viz])

    check_perplexity(features.shape[0], perplexity)
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=500
    ).fit_transform(features)


def prepare_tsne(stages: FeatureStages, perplexity: float = 30.0, seed: int = 0) -> dict:
    """``(modality, stage)`` -> (points, 2) embeddings of every panel."""
    check_perplexity(stages.labels.shape[0], perplexity)
    return {key: embed(value, perplexity, seed) for key, value in stages.features.items()}


def class_separation(stages: FeatureStages) -> dict:
    """``(modality, stage)`` -> silhouette score (cosine) of the event segments grouped by class,
    measured on the features themselves (not the 2-D embedding); None when undefined (fewer
    than two event classes, or a class per point)."""
    from sklearn.metrics import silhouette_score  # scikit-learn (optional, [viz])

    event = stages.labels != ave.BACKGROUND
    labels = stages.labels[event]
    classes = np.unique(labels).size
    if not 2 <= classes < labels.size:
        return {key: None for key in stages.features}
    return {
        key: float(silhouette_score(value[event], labels, metric="cosine"))
        for key, value in stages.features.items()
    }


def draw_tsne(
    embeddings: dict,
    labels: np.ndarray,
    title: str,
    separation: dict | None = None,
    dpi: int = figures.DEFAULT_DPI,
):
    """2 x 3 scatter plots (2 x 2 without PSP): audio (top) and visual (bottom) at each stage
    ``embeddings`` has; each panel's title carries its ``separation`` (silhouette) when given."""
    import matplotlib.patches  # matplotlib (optional, [viz]): only to draw

    colors = figures.class_colors()
    figure = figures.new_figure(*SIZE_INCHES, dpi=dpi)
    stages = [stage for stage in STAGES if (MODALITIES[0], stage) in embeddings]
    grid = figure.subplots(len(MODALITIES), len(stages))
    order = np.argsort(labels == ave.BACKGROUND, kind="stable")[::-1]  # background underneath
    for row, modality in enumerate(MODALITIES):
        for col, stage in enumerate(stages):
            axes = grid[row, col]
            points = embeddings[(modality, stage)][order]
            axes.scatter(points[:, 0], points[:, 1], c=colors[labels[order]], s=9, linewidths=0)
            score = None if separation is None else separation.get((modality, stage))
            suffix = "" if score is None else f" (silhouette {score:.2f})"
            axes.set_title(f"{modality}: {stage}{suffix}", fontsize=9)
            axes.set_xticks([])
            axes.set_yticks([])
    present = sorted(set(labels.tolist()))
    handles = [
        matplotlib.patches.Patch(color=colors[c], label=figures.short_name(c)) for c in present
    ]
    figure.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.87, top=0.92, bottom=0.03, wspace=0.08, hspace=0.12)
    return figure
