r"""Draws what PSP does, one figure kind per sub-command, into ``--out`` (PNG; SVG with --svg).

    python -m ave_tf.visualize timeline    --model M.keras --dataset synthetic --split test[:4]
    python -m ave_tf.visualize connections --model M.keras --features f.npz --videos 0,3
    python -m ave_tf.visualize attention   --model M.keras --features f.npz --frames frames/
    python -m ave_tf.visualize tsne        --model M.keras --dataset synthetic --split test
    python -m ave_tf.visualize curves      --results runs/x/results.json --confusion eval.json

Each prints the files it wrote, e.g. ``wrote out/timeline_video_0.png``. ``--model`` is a
``.keras`` file (``timeline`` also takes a SavedModel folder, called via ``serving_default``).
Videos come from a ``tfds_ave`` split (``--dataset``/``--split``) or a features file
(``--features``: ``.npz``/``.h5`` with ``audio``, ``visual``, optional ``segment_labels``,
``video_ids``); ``--videos`` picks indices within them (default: the first one; ``tsne`` uses all).
"""

import dataclasses
import sys

from absl import app, flags

COMMANDS = ("timeline", "connections", "attention", "tsne", "curves")

flags.DEFINE_string("out", "visualizations", "Folder the figures are written to.")
flags.DEFINE_bool("svg", False, "Also write an SVG next to every PNG.")
flags.DEFINE_integer("dpi", 100, "Pixels per inch of the PNGs.")
flags.DEFINE_string("model", None, "A .keras model (timeline: or a SavedModel folder).")
flags.DEFINE_string("features", None, "An .npz/.h5 file with audio, visual[, segment_labels].")
flags.DEFINE_string("dataset", None, "A tfds_ave config to read videos from, e.g. synthetic.")
flags.DEFINE_string("split", "test", "The TFDS split (slicing allowed, e.g. test[:16]).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).")
flags.DEFINE_list("videos", None, "Indices of the videos to draw (default: 0; tsne: all).")
flags.DEFINE_integer("batch_size", 16, "Videos per model call.")
flags.DEFINE_string("frames", None, "attention: folder of the video's frames (images).")
flags.DEFINE_float("perplexity", 30.0, "tsne: perplexity (needs more segments than this).")
flags.DEFINE_integer("seed", 0, "tsne: random seed.")
flags.DEFINE_string("results", None, "curves: a run's results.json (or its folder).")
flags.DEFINE_integer("run", 0, "curves: which entry of results.json's runs (one per seed).")
flags.DEFINE_string("confusion", None, "curves: confusion matrix file (.json/.npy/.csv).")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Options:
    """Everything a sub-command needs, resolved from the flags by ``options_from_flags``."""

    command: str
    out: str
    svg: bool
    dpi: int
    model: str | None
    features: str | None
    dataset: str | None
    split: str
    data_dir: str | None
    videos: tuple[int, ...] | None
    batch_size: int
    frames: str | None
    perplexity: float
    seed: int
    results: str | None
    run: int
    confusion: str | None


def options_from_flags(command: str) -> Options:
    """The one place that reads ``FLAGS``."""
    if command not in COMMANDS:
        raise app.UsageError(f"sub-command must be one of {', '.join(COMMANDS)}; got {command!r}")
    try:
        videos = None if FLAGS.videos is None else tuple(int(v) for v in FLAGS.videos)
    except ValueError:
        raise app.UsageError(f"--videos must be integers; got {FLAGS.videos}") from None
    return Options(
        command=command,
        out=FLAGS.out,
        svg=FLAGS.svg,
        dpi=FLAGS.dpi,
        model=FLAGS.model,
        features=FLAGS.features,
        dataset=FLAGS.dataset,
        split=FLAGS.split,
        data_dir=FLAGS.data_dir,
        videos=videos,
        batch_size=FLAGS.batch_size,
        frames=FLAGS.frames,
        perplexity=FLAGS.perplexity,
        seed=FLAGS.seed,
        results=FLAGS.results,
        run=FLAGS.run,
        confusion=FLAGS.confusion,
    )


def main(argv):
    if len(argv) != 2:
        raise app.UsageError(f"usage: python -m ave_tf.visualize {{{','.join(COMMANDS)}}} [flags]")
    from ave_tf.visualize import commands
    from ave_tf.visualize.curves import ResultsFormatError
    from ave_tf.visualize.sources import SourceError

    options = options_from_flags(argv[1])
    try:
        written = commands.run(options)
    except (SourceError, ResultsFormatError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
