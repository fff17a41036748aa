"""Shared figure plumbing: the headless backend, class colours, atomic PNG/SVG writing."""

import pathlib
import re

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display

import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ave_tf import ave  # noqa: E402
from ave_tf.atomic_files import atomic_path  # noqa: E402

DEFAULT_DPI = 100
BACKGROUND_COLOR = (0.85, 0.85, 0.85, 1.0)


def class_colors() -> np.ndarray:
    """(29, 4) RGBA colour per class: 28 distinct category colours, light grey for background."""
    tab20 = [plt.get_cmap("tab20")(i) for i in range(20) if i not in (14, 15)]  # no greys
    tab20b = [plt.get_cmap("tab20b")(i) for i in range(0, 20, 2)]
    palette = tab20 + tab20b  # 18 + 10 = 28 category colours
    colors = np.array(palette[: ave.BACKGROUND] + [BACKGROUND_COLOR])
    assert colors.shape == (ave.NUM_CLASSES, 4)
    return colors


def short_name(class_id: int) -> str:
    """The class name up to its first comma: "Male speech, man speaking" -> "Male speech"."""
    return ave.CLASS_NAMES[int(class_id)].split(",")[0]


def text_color(rgba) -> str:
    """Black or white, whichever reads better on ``rgba``."""
    red, green, blue = matplotlib.colors.to_rgb(rgba)
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def file_stem(text: str) -> str:
    """``text`` made safe as a file name (video ids may hold any character)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "video"


def new_figure(width: float, height: float, dpi: int = DEFAULT_DPI):
    """A figure of exactly ``width`` x ``height`` inches (``width * dpi`` pixels wide)."""
    return plt.figure(figsize=(width, height), dpi=dpi)


def save_figure(figure, out_dir, stem: str, *, svg: bool = False) -> list[pathlib.Path]:
    """Writes ``<out_dir>/<stem>.png`` (and ``.svg``), each via a temp file and a rename.

    The pixel size is the figure's size times its dpi (no tight bounding box), so callers and
    tests know it in advance. The figure is closed afterwards.

    Returns:
        The written paths.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for suffix in (".png", ".svg") if svg else (".png",):
            target = out_dir / f"{stem}{suffix}"
            with atomic_path(target, suffix=suffix) as temporary:
                figure.savefig(temporary, format=suffix[1:], dpi=figure.dpi)
            written.append(target)
    finally:
        plt.close(figure)
    return written
