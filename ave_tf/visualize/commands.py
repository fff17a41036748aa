"""The sub-commands of ``python -m ave_tf.visualize``: read the inputs, prepare, draw, save.

Videos come from ``ave_tf.videos``; ``timeline`` runs any model through
``ave_tf.predictors``; the other figures need a ``.keras`` model's internals. Each
``*_command(options)`` returns the paths it wrote; bad input raises a ``UsageError``.
"""

import dataclasses

import numpy as np

from ave_tf.errors import UsageError
from ave_tf.predictors import load_keras_model, load_predictor, predict_in_batches
from ave_tf.videos import Videos, read_features_file, read_split
from ave_tf.visualize import attention, connections, curves, figures, timeline, tsne

COMMAND_NAMES = ("timeline", "connections", "attention", "tsne", "curves")


@dataclasses.dataclass(frozen=True)
class Options:
    """What a sub-command needs (the CLI's flags; see ``python -m ave_tf.visualize --help``)."""

    command: str
    out: str
    svg: bool = False
    dpi: int = 100
    model: str | None = None
    features: str | None = None
    dataset: str | None = None
    split: str = "test"
    data_dir: str | None = None
    manual_dir: str | None = None
    videos: tuple[int, ...] | None = None
    batch_size: int = 16
    frames: str | None = None
    perplexity: float = 30.0
    seed: int = 0
    results: str | None = None
    run: int = 0
    confusion: str | None = None


def load_videos(options) -> Videos:
    """The videos of ``--features`` or ``--dataset``/``--split`` (``ave_tf.videos``)."""
    if (options.features is None) == (options.dataset is None):
        raise UsageError("pass exactly one of --features and --dataset")
    if options.features is not None:
        return read_features_file(options.features)
    return read_split(options.dataset, options.split, options.data_dir, options.manual_dir)


def chosen_videos(options, default_all: bool = False) -> Videos:
    """The videos named by ``--videos`` (default: the first one, or all)."""
    videos = load_videos(options)
    if options.videos is None:
        return videos if default_all else videos.select([0])
    return videos.select(options.videos)


def _require_model(options) -> str:
    if options.model is None:
        raise UsageError(f"{options.command} needs --model")
    return options.model


def load_inspectable_model(path):
    """A ``.keras`` model rebuilt with its internals as outputs (``expose_internals``); the
    internals (attention, beta/gamma, features) are only available from a ``.keras`` file."""
    from ave_tf.models import expose_internals  # Keras: only for the figures that need it

    return expose_internals(load_keras_model(path))


def run_model(model, videos: Videos, batch_size: int = 16) -> dict[str, np.ndarray]:
    """All outputs of ``model`` on ``videos`` as NumPy arrays keyed by output name."""
    outputs = model.predict(videos.inputs, batch_size=batch_size, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}


def _draw_each(options, videos: Videos, kind: str, draw_video) -> list:
    """Saves ``draw_video(i, video_id) -> figure`` for every video as ``<kind>_<id>``."""
    written = []
    for i, video_id in enumerate(videos.video_ids):
        figure = draw_video(i, video_id)
        stem = f"{kind}_{figures.file_stem(video_id)}"
        written += figures.save_figure(figure, options.out, stem, svg=options.svg)
    return written


def timeline_command(options) -> list:
    videos = chosen_videos(options)
    predict = load_predictor(_require_model(options))
    predictions = predict_in_batches(predict, videos.inputs, options.batch_size)

    def draw(i, video_id):
        prepared = timeline.prepare_timeline(
            video_id,
            predictions["segment_probabilities"][i],
            predictions["segment_classes"][i],
            None if videos.segment_labels is None else videos.segment_labels[i],
        )
        return timeline.draw_timeline(prepared, dpi=options.dpi)

    return _draw_each(options, videos, "timeline", draw)


def connections_command(options) -> list:
    videos = chosen_videos(options)
    model = load_inspectable_model(_require_model(options))
    if not any(layer.name == "psp" for layer in model.layers):
        raise UsageError(
            f"--model {options.model} has no PSP layer (an AVEL network?): connections draws "
            "PSP's beta and gamma; timeline, attention and tsne work on it"
        )
    internals = run_model(model, videos, options.batch_size)
    tau = connections.psp_tau(model)

    def draw(i, video_id):
        prepared = connections.prepare_connections(internals, i, video_id, tau)
        return connections.draw_connections(prepared, dpi=options.dpi)

    return _draw_each(options, videos, "connections", draw)


def attention_command(options) -> list:
    videos = chosen_videos(options)
    if options.frames is not None and len(videos) != 1:
        raise UsageError(f"--frames belongs to one video; --videos selects {len(videos)}")
    frames = None if options.frames is None else attention.load_frames(options.frames)
    internals = run_model(
        load_inspectable_model(_require_model(options)), videos, options.batch_size
    )

    def draw(i, video_id):
        prepared = attention.prepare_attention(video_id, internals["visual_attention"][i], frames)
        return attention.draw_attention(prepared, dpi=options.dpi)

    return _draw_each(options, videos, "attention", draw)


def tsne_command(options) -> list:
    videos = chosen_videos(options, default_all=True)
    if videos.segment_labels is None:
        raise UsageError("tsne colours points by class: the videos need segment_labels")
    tsne.check_perplexity(len(videos) * videos.audio.shape[1], options.perplexity)
    model = load_inspectable_model(_require_model(options))
    internals = run_model(model, videos, options.batch_size)
    stages = tsne.prepare_stages(videos.audio, videos.visual, internals, videos.segment_labels)
    embeddings = tsne.prepare_tsne(stages, options.perplexity, options.seed)
    source = options.features or f"{options.dataset}:{options.split}"
    title = (
        f"t-SNE of {stages.labels.size} segments of {len(videos)} videos ({source}), "
        f"perplexity {options.perplexity:g}; silhouette: class separation of the event segments"
    )
    separation = tsne.class_separation(stages)
    figure = tsne.draw_tsne(embeddings, stages.labels, title, separation, dpi=options.dpi)
    return figures.save_figure(figure, options.out, "tsne", svg=options.svg)


def curves_command(options) -> list:
    if options.results is None and options.confusion is None:
        raise curves.ResultsFormatError("curves needs --results and/or --confusion")
    written = []
    if options.results is not None:
        prepared = curves.prepare_curves(
            curves.load_results(options.results), options.run, source=options.results
        )
        figure = curves.draw_curves(prepared, dpi=options.dpi)
        written += figures.save_figure(figure, options.out, "curves", svg=options.svg)
    if options.confusion is not None:
        matrix, names = curves.load_confusion(options.confusion)
        figure = curves.draw_confusion(curves.prepare_confusion(matrix), names, dpi=options.dpi)
        written += figures.save_figure(figure, options.out, "confusion", svg=options.svg)
    return written


COMMANDS = {
    "timeline": timeline_command,
    "connections": connections_command,
    "attention": attention_command,
    "tsne": tsne_command,
    "curves": curves_command,
}


def run(options) -> list:
    """Runs ``options.command``; returns the written paths."""
    return COMMANDS[options.command](options)
