"""Fixtures of the figure tests: random AVE-shaped videos, a tiny trained model, its files."""

import numpy as np
import pytest

from ave_tf import ave

VIDEOS = 6


def random_videos(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """AVE-shaped arrays: event videos of one category with background segments."""
    rng = np.random.default_rng(seed)
    labels = np.where(
        rng.uniform(size=(count, ave.NUM_SEGMENTS)) < 0.3,
        ave.BACKGROUND,
        rng.integers(0, ave.BACKGROUND, (count, 1)),
    )
    return {
        "audio": rng.uniform(0, 2, (count, ave.NUM_SEGMENTS, ave.AUDIO_DIM)).astype("float32"),
        "visual": rng.uniform(0, 1, (count, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE)).astype("float32"),
        "segment_labels": labels.astype("int64"),
        "video_ids": np.array([f"clip/{i}" for i in range(count)]),
    }


@pytest.fixture(scope="session")
def videos_arrays():
    return random_videos(VIDEOS)


@pytest.fixture(scope="session")
def features_file(tmp_path_factory, videos_arrays):
    path = tmp_path_factory.mktemp("features") / "videos.npz"
    np.savez(path, **videos_arrays)
    return path


@pytest.fixture(scope="session")
def model_file(tmp_path_factory, videos_arrays):
    """A fully supervised PSP model trained for one epoch on the random videos, as .keras."""
    import keras

    from ave_tf.config import FullySupervisedConfig
    from ave_tf.models import fully_supervised_model, training_objectives

    keras.utils.set_random_seed(0)
    config = FullySupervisedConfig()
    model = fully_supervised_model(config)
    losses, loss_weights, metrics = training_objectives(config)
    model.compile(optimizer="adam", loss=losses, loss_weights=loss_weights, metrics=metrics)
    labels = videos_arrays["segment_labels"].astype("int32")
    inputs = {"audio": videos_arrays["audio"], "visual": videos_arrays["visual"]}
    model.fit(inputs, {name: labels for name in model.output}, epochs=1, batch_size=3, verbose=0)
    path = tmp_path_factory.mktemp("model") / "psp.keras"
    model.save(path)
    return path


def make_options(command: str, out, **overrides):
    """Options for ``commands.run`` with small figures (dpi 50) and small batches."""
    from ave_tf.visualize.commands import Options

    return Options(command, str(out), **{"dpi": 50, "batch_size": 4, **overrides})


def png_size(path) -> tuple[int, int]:
    """(width, height) of a non-empty PNG."""
    from PIL import Image

    assert path.suffix == ".png" and path.stat().st_size > 0, path
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def expected_pixels(inches, dpi=50) -> tuple[int, int]:
    return round(inches[0] * dpi), round(inches[1] * dpi)


def drawn_texts(figure) -> list:
    """(text, window extent in pixels) of every visible, non-empty text of ``figure``, drawn."""
    import matplotlib.text

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return [
        (text.get_text(), text.get_window_extent(renderer))
        for text in figure.findobj(matplotlib.text.Text)
        if text.get_visible() and text.get_text().strip()
    ]


def assert_texts_inside_and_apart(figure, tolerance_pixels: float = 0.5) -> None:
    """Every text lies inside the figure and no two texts overlap (as the renderer lays them
    out), so none is clipped at an edge or drawn over another."""
    texts = drawn_texts(figure)
    width, height = figure.canvas.get_width_height()
    for text, box in texts:
        inside = (
            box.x0 >= -tolerance_pixels
            and box.y0 >= -tolerance_pixels
            and box.x1 <= width + tolerance_pixels
            and box.y1 <= height + tolerance_pixels
        )
        assert inside, f"{text!r} at {box.extents} leaves the {width}x{height} figure"
    for i, (text, box) in enumerate(texts):
        for other, other_box in texts[i + 1 :]:
            overlap_x = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
            overlap_y = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
            overlap = min(overlap_x, overlap_y) > tolerance_pixels
            assert not overlap, f"{text!r} {box.extents} overlaps {other!r} {other_box.extents}"
