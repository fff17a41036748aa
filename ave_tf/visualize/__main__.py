r"""Draws what PSP does, one figure kind per sub-command, into ``--out`` (PNG; SVG with --svg).

    python -m ave_tf.visualize timeline    --model M.keras --dataset synthetic --split test[:4]
    python -m ave_tf.visualize connections --model M.keras --features f.npz --videos 0,3
    python -m ave_tf.visualize attention   --model M.keras --features f.npz --frames frames/
    python -m ave_tf.visualize tsne        --model M.keras --dataset synthetic --split test
    python -m ave_tf.visualize curves      --results runs/x/results.json --confusion eval.json

Each prints the files it wrote (into ``out/visualizations`` unless ``--out`` says otherwise)::

    python -m ave_tf.visualize timeline --model M.keras --features my_videos.npz --videos 0,3
    #> wrote out/visualizations/timeline_my_videos_0.png
    #> wrote out/visualizations/timeline_my_videos_3.png

``--model`` is a ``.keras`` file (``timeline`` also takes a SavedModel folder or a versioned
export root, called via ``serving_default``). Videos come from a ``tfds_ave`` split
(``--dataset``/``--split``) or a features file (``--features``: ``.npz``/``.h5`` with ``audio``,
``visual``, optional ``segment_labels``, ``video_ids``); ``--videos`` picks indices within them
(default: the first one; ``tsne`` uses all).
Bad input (a file, flag or folder): one ``error:`` line, exit code 2.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import dataclasses

from absl import flags

from ave_tf.errors import UsageError
from ave_tf.visualize.commands import COMMAND_NAMES, Options


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Declares the CLI's flags (only when run as a program, so that importing this module
    never clashes with flags other modules define)."""
    f = flag_values
    flags.DEFINE_string("out", "out/visualizations", "Folder for the figures.", flag_values=f)
    flags.DEFINE_bool("svg", False, "Also write an SVG next to every PNG.", flag_values=f)
    flags.DEFINE_integer("dpi", 100, "Pixels per inch of the PNGs.", flag_values=f)
    flags.DEFINE_string(
        "model",
        None,
        "A .keras model (timeline: also a SavedModel folder or an export root).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "features",
        None,
        "An .npz/.h5 file with audio, visual[, segment_labels, video_ids].",
        flag_values=f,
    )
    flags.DEFINE_string(
        "dataset", None, "A tfds_ave config to read videos from, e.g. synthetic.", flag_values=f
    )
    flags.DEFINE_string(
        "split", "test", "The TFDS split (slicing allowed, e.g. test[:16]).", flag_values=f
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).", flag_values=f)
    flags.DEFINE_string(
        "manual_dir", None, "The AVE release folder (to build --dataset=features).", flag_values=f
    )
    flags.DEFINE_list(
        "videos", None, "Indices of the videos to draw (default: 0; tsne: all).", flag_values=f
    )
    flags.DEFINE_integer("batch_size", 16, "Videos per model call.", flag_values=f)
    flags.DEFINE_string(
        "frames", None, "attention: folder of the video's frames (images).", flag_values=f
    )
    flags.DEFINE_float(
        "perplexity", 30.0, "tsne: perplexity (needs more segments than this).", flag_values=f
    )
    flags.DEFINE_integer("seed", 0, "tsne: random seed.", flag_values=f)
    flags.DEFINE_string(
        "results", None, "curves: a run's results.json (or its folder).", flag_values=f
    )
    flags.DEFINE_integer(
        "run", 0, "curves: which entry of results.json's runs (one per seed).", flag_values=f
    )
    flags.DEFINE_string(
        "confusion", None, "curves: confusion matrix file (.json/.npy/.csv).", flag_values=f
    )


def options_from_flags(command: str, flag_values: flags.FlagValues = flags.FLAGS) -> Options:
    """The one place that reads the flags: every ``Options`` field is the flag of its name."""
    if command not in COMMAND_NAMES:
        raise UsageError(f"sub-command must be one of {', '.join(COMMAND_NAMES)}; got {command!r}")
    try:
        videos = None if flag_values.videos is None else tuple(int(v) for v in flag_values.videos)
    except ValueError:
        raise UsageError(f"--videos must be integers; got {flag_values.videos}") from None
    values = {
        field.name: flag_values[field.name].value
        for field in dataclasses.fields(Options)
        if field.name not in ("command", "videos")
    }
    return Options(command=command, videos=videos, **values)


def main(argv):
    if len(argv) != 2:
        raise UsageError(f"usage: python -m ave_tf.visualize {{{','.join(COMMAND_NAMES)}}} [flags]")
    from ave_tf.visualize import commands  # matplotlib: after the command is checked

    for path in commands.run(options_from_flags(argv[1])):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
