"""The sub-commands of ``python -m ave_tf.visualize``: read the inputs, prepare, draw, save.

Each ``*_command(options)`` returns the paths it wrote.
"""

import dataclasses

from ave_tf.visualize import attention, connections, curves, figures, sources, timeline, tsne

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


def load_videos(options) -> sources.Videos:
    """The videos of ``--features`` or ``--dataset``/``--split``."""
    if (options.features is None) == (options.dataset is None):
        raise sources.SourceError("pass exactly one of --features and --dataset")
    if options.features is not None:
        return sources.load_features_file(options.features)
    return sources.load_split(options.dataset, options.split, options.data_dir, options.manual_dir)


def chosen_videos(options, default_all: bool = False) -> sources.Videos:
    """The videos named by ``--videos`` (default: the first one, or all)."""
    videos = load_videos(options)
    if options.videos is None:
        return videos if default_all else videos.select([0])
    return videos.select(options.videos)


def _require_model(options) -> str:
    if options.model is None:
        raise sources.SourceError(f"{options.command} needs --model")
    return options.model


def timeline_command(options) -> list:
    videos = chosen_videos(options)
    predictions = sources.predict_segments(_require_model(options), videos, options.batch_size)
    written = []
    for i, video_id in enumerate(videos.video_ids):
        prepared = timeline.prepare_timeline(
            video_id,
            predictions["segment_probabilities"][i],
            predictions["segment_classes"][i],
            None if videos.segment_labels is None else videos.segment_labels[i],
        )
        figure = timeline.draw_timeline(prepared, dpi=options.dpi)
        stem = f"timeline_{figures.file_stem(video_id)}"
        written += figures.save_figure(figure, options.out, stem, svg=options.svg)
    return written


def connections_command(options) -> list:
    videos = chosen_videos(options)
    model = sources.load_inspectable_model(_require_model(options))
    internals = sources.run_model(model, videos, options.batch_size)
    tau = connections.psp_tau(model)
    written = []
    for i, video_id in enumerate(videos.video_ids):
        prepared = connections.prepare_connections(internals, i, video_id, tau)
        figure = connections.draw_connections(prepared, dpi=options.dpi)
        stem = f"connections_{figures.file_stem(video_id)}"
        written += figures.save_figure(figure, options.out, stem, svg=options.svg)
    return written


def attention_command(options) -> list:
    videos = chosen_videos(options)
    if options.frames is not None and len(videos) != 1:
        raise ValueError(f"--frames belongs to one video; --videos selects {len(videos)}")
    frames = None if options.frames is None else attention.load_frames(options.frames)
    model = sources.load_inspectable_model(_require_model(options))
    internals = sources.run_model(model, videos, options.batch_size)
    written = []
    for i, video_id in enumerate(videos.video_ids):
        prepared = attention.prepare_attention(video_id, internals["visual_attention"][i], frames)
        figure = attention.draw_attention(prepared, dpi=options.dpi)
        stem = f"attention_{figures.file_stem(video_id)}"
        written += figures.save_figure(figure, options.out, stem, svg=options.svg)
    return written


def tsne_command(options) -> list:
    videos = chosen_videos(options, default_all=True)
    if videos.segment_labels is None:
        raise sources.SourceError("tsne colours points by class: the videos need segment_labels")
    tsne.check_perplexity(len(videos) * videos.audio.shape[1], options.perplexity)
    model = sources.load_inspectable_model(_require_model(options))
    internals = sources.run_model(model, videos, options.batch_size)
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
