"""Attention: AVGA's 7x7 spatial weights per segment, alone or over the video's frames.

Frames come from a folder of images (any format Pillow reads, sorted by file name); with more
images than segments, the frame nearest each segment's centre is used.
"""

import dataclasses
import pathlib

import numpy as np
from PIL import Image

from ave_tf import ave
from ave_tf.errors import UsageError
from ave_tf.visualize import figures

STRIP_INCHES = (15.0, 2.2)
OVERLAY_INCHES = (15.0, 3.6)
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
OVERLAY_ALPHA = 0.55


class FramesError(UsageError, ValueError):
    """A frames folder that is missing or holds no image (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Attention:
    """One video's spatial attention.

    Attributes:
        video_id: the video's id.
        maps: (10, 7, 7) AVGA weights per segment (each map sums to 1).
        frames: (10, H, W, 3) uint8 frames, or None.
    """

    video_id: str
    maps: np.ndarray
    frames: np.ndarray | None = None


def prepare_attention(video_id, visual_attention, frames=None) -> Attention:
    """Reshapes one video's ``visual_attention`` (10, 49) to (10, 7, 7) maps (row-major, the
    order in which AVGA flattens the 7x7 grid)."""
    weights = np.asarray(visual_attention, dtype=np.float64)
    height, width, _ = ave.VISUAL_SHAPE
    if weights.shape != (ave.NUM_SEGMENTS, height * width):
        raise ValueError(
            f"visual_attention must be ({ave.NUM_SEGMENTS}, {height * width}); got {weights.shape}"
        )
    return Attention(str(video_id), weights.reshape(ave.NUM_SEGMENTS, height, width), frames)


def frame_files(folder) -> list[pathlib.Path]:
    """Image files of ``folder``, sorted by name."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FramesError(f"frames folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise FramesError(f"frames folder {folder} holds no image ({', '.join(FRAME_SUFFIXES)})")
    return files


def segment_frame_indices(count: int, segments: int = ave.NUM_SEGMENTS) -> list[int]:
    """For ``count`` frames spread evenly over the video, the frame at each segment's centre."""
    return [min(int((t + 0.5) * count / segments), count - 1) for t in range(segments)]


def load_frames(folder, size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """(10, height, width, 3) uint8: one frame per segment from a folder of images, resized to
    ``size`` (width, height)."""
    files = frame_files(folder)
    frames = []
    for index in segment_frame_indices(len(files)):
        with Image.open(files[index]) as image:
            frames.append(np.asarray(image.convert("RGB").resize(size, Image.BILINEAR)))
    return np.stack(frames)


def upsample(attention_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 7x7 map bilinearly resized to (height, width) and scaled to [0, 1]."""
    image = Image.fromarray(attention_map.astype(np.float32), mode="F")
    resized = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float64)
    low, high = resized.min(), resized.max()
    return (resized - low) / (high - low) if high > low else np.zeros_like(resized)


def overlay(frame: np.ndarray, attention_map: np.ndarray, colormap="jet") -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the frame blended with the colour-mapped, upsampled map."""
    import matplotlib  # matplotlib (optional, [viz]): only to draw

    height, width = frame.shape[:2]
    heat = matplotlib.colormaps[colormap](upsample(attention_map, height, width))[..., :3]
    return (1 - OVERLAY_ALPHA) * frame.astype(np.float64) / 255.0 + OVERLAY_ALPHA * heat


def draw_attention(attention: Attention, dpi: int = figures.DEFAULT_DPI):
    """A strip of 10 heatmaps (shared colour scale); with frames, a row of frames and a row
    of frames overlaid with the attention."""
    with_frames = attention.frames is not None
    figure = figures.new_figure(*(OVERLAY_INCHES if with_frames else STRIP_INCHES), dpi=dpi)
    rows = 2 if with_frames else 1
    grid = figure.subplots(rows, ave.NUM_SEGMENTS, squeeze=False)
    vmax = attention.maps.max()
    for t in range(ave.NUM_SEGMENTS):
        if with_frames:
            grid[0, t].imshow(attention.frames[t])
            grid[1, t].imshow(overlay(attention.frames[t], attention.maps[t]))
        else:
            image = grid[0, t].imshow(attention.maps[t], cmap="viridis", vmin=0.0, vmax=vmax)
        grid[0, t].set_title(f"{t} s", fontsize=8)
        for axes in grid[:, t]:
            axes.set_xticks([])
            axes.set_yticks([])
    figure.subplots_adjust(left=0.01, right=0.93, top=0.8, bottom=0.03, wspace=0.08, hspace=0.05)
    if not with_frames:
        figure.colorbar(image, ax=list(grid[0]), fraction=0.01, pad=0.01)
    figure.suptitle(
        f"{attention.video_id}: audio-guided visual attention (7x7 per segment)", fontsize=10
    )
    return figure
