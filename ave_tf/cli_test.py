"""Every program answers a usage error with one ``error:`` line and exit code 2, before it
imports TensorFlow (or Keras, TFDS, Beam, gRPC) or reads weights. (The TF Serving stand-in's
program, not part of the library, has the same test in tests/serving/cli_test.py.)

Each case runs the program as ``python -m`` does (`ave_tf.testing.programs`); none of them
imports TensorFlow, so each takes a fraction of a second.
"""

import numpy as np
import pytest

from ave_tf.testing.clips import ClipSpec, write_clip
from ave_tf.testing.programs import run_program

WEIGHTS = ["--vggish_checkpoint={tmp}/vggish_model.ckpt", "--vgg19_weights={tmp}/vgg19.h5"]

CASES = [  # (program, arguments ({tmp}: the scratch folder), words of the error line)
    ("trainers.fully", ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ("trainers.fully", ["--epochs=0"], "--epochs must be >= 1; got 0"),
    ("trainers.weakly", ["--no_such_flag=1"], "Unknown command line flag"),
    ("trainers.weakly", ["--tau=abc"], "tau must be a number"),
    ("trainers.evaluate", ["--no_such_flag=1"], "Unknown command line flag"),
    ("trainers.evaluate", ["--model={tmp}/missing.keras"], "missing.keras is neither a .keras"),
    ("trainers.ablate", ["--no_such_flag=1"], "Unknown command line flag"),
    ("trainers.ablate", ["--tables=9"], "--tables must be among 1, 2, 3, 4; got [9]"),
    ("ave_tf.predict", ["--no_such_flag=1"], "Unknown command line flag"),
    ("ave_tf.predict", ["--batch_size=0", "x.npz"], "--batch_size=0"),
    (
        "ave_tf.predict",
        ["--local={tmp}/model.keras", "{tmp}/missing.npz"],
        "missing.npz: features file does not exist",
    ),
    (
        "ave_tf.predict",
        ["--server=http://127.0.0.1:9", "{tmp}/notes.txt"],
        "notes.txt: a features file must end in .npz, .h5 or .hdf5",
    ),
    (
        "ave_tf.predict",
        ["--local={tmp}/model.keras", "--video={tmp}/notes.txt", *WEIGHTS],
        "notes.txt: not a readable video file",
    ),
    (
        "ave_tf.predict",
        ["--server=http://127.0.0.1:9", "--video={tmp}/missing.mp4"],
        "--video {tmp}/missing.mp4: no such file",
    ),
    (
        "ave_tf.predict",
        ["--local={tmp}/missing.keras", "{tmp}/videos.npz"],
        "missing.keras is neither",
    ),
    ("ave_tf.extract", ["--no_such_flag=1"], "Unknown command line flag"),
    ("ave_tf.extract", ["--output={tmp}/out.h5", *WEIGHTS, "{tmp}/missing.mp4"], "no such file"),
    (
        "ave_tf.extract",
        ["--output={tmp}/out.h5", *WEIGHTS, "{tmp}/notes.txt"],
        "notes.txt: not a readable video file",
    ),
    (
        "ave_tf.extract",
        ["--output={tmp}/out.h5", *WEIGHTS, "{tmp}/silent.mp4"],
        "silent.mp4: has no audio stream",
    ),
    (
        "ave_tf.extract",
        ["--output={tmp}/out.h5", "--vggish_checkpoint={tmp}/no.ckpt", *WEIGHTS[1:], "{tmp}/c.mp4"],
        "VGGish checkpoint {tmp}/no.ckpt: no such file",
    ),
    (
        "ave_tf.extract",
        ["--output={tmp}/out.h5", WEIGHTS[0], "--vgg19_weights={tmp}", "{tmp}/c.mp4"],
        "{tmp}: no such VGG19 weights file",
    ),
    ("ave_tf.convert", ["--no_such_flag=1"], "Unknown command line flag"),
    (
        "ave_tf.convert",
        ["--setting=fully", "{tmp}/missing.pt", "{tmp}/out.keras"],
        "missing.pt: cannot read",
    ),
    ("ave_tf.visualize", ["timeline", "--no_such_flag=1"], "Unknown command line flag"),
    (
        "ave_tf.visualize",
        ["timeline", "--model={tmp}/model.keras", "--features={tmp}/missing.npz"],
        "missing.npz: features file does not exist",
    ),
    ("ave_tf.export_video", ["--no_such_flag=1"], "Unknown command line flag"),
    ("ave_tf.export_video", ["--model={tmp}/model.keras", "--name=7"], "--name: model name"),
    ("ave_tf.export_video", ["--model={tmp}/missing.keras", *WEIGHTS], "missing.keras is neither"),
    (
        "ave_tf.export_video",
        ["--model={tmp}/model.keras", "--vggish_checkpoint={tmp}/no.ckpt", *WEIGHTS[1:]],
        "VGGish checkpoint {tmp}/no.ckpt: no such file",
    ),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """Placeholder weight and model files, a text file, a 10 s clip, one without audio and a
    features file of one video."""
    folder = tmp_path_factory.mktemp("mistakes")
    for name in ("vggish_model.ckpt", "vgg19.h5", "model.keras"):
        (folder / name).write_bytes(b"")
    (folder / "notes.txt").write_text("not a video\n")
    write_clip(folder / "c.mp4", ClipSpec(seconds=10))
    write_clip(folder / "silent.mp4", ClipSpec(seconds=10, channels=0))
    np.savez(folder / "videos.npz", audio=np.zeros((10, 128)), visual=np.zeros((10, 7, 7, 512)))
    return folder


@pytest.mark.parametrize(
    "module, args, words", CASES, ids=[f"{m}:{' '.join(a)[:40]}" for m, a, _ in CASES]
)
def test_usage_error_is_one_line_exit_2_before_tensorflow(scratch, module, args, words):
    done = run_program(module, *[a.format(tmp=scratch) for a in args], cwd=scratch)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and words.format(tmp=scratch) in line
    assert done.imported == (), f"imported {done.imported} before: {line}"
    assert not done.stdout
