"""Connections: PSP's similarity matrices before and after thresholding (the paper's Fig. 4,
right). Rows of ``*_va`` are visual segments and columns audio segments; ``*_av`` the reverse."""

import dataclasses
import math

import numpy as np

from ave_tf import ave
from ave_tf.visualize import figures

SIZE_INCHES = (11.0, 10.0)
MATRICES = ("beta_va", "gamma_va", "beta_av", "gamma_av")


@dataclasses.dataclass(frozen=True)
class Connections:
    """One video's PSP matrices, each (10, 10).

    Attributes:
        video_id: the video's id.
        matrices: ``beta_va``, ``gamma_va``, ``beta_av``, ``gamma_av`` as the model computed them
            (gamma: after thresholding at tau, pruned entries exactly 0).
        tau: the threshold of the model's PSP layer (None when unknown).
    """

    video_id: str
    matrices: dict[str, np.ndarray]
    tau: float | None

    def kept(self, name: str) -> int:
        """Connections that survive in ``gamma_*`` ``name``."""
        return int(np.count_nonzero(self.matrices[name]))

    def pruned(self, direction: str) -> np.ndarray:
        """(10, 10) bool: positive in beta, removed in gamma (direction ``"va"``/``"av"``)."""
        beta, gamma = self.matrices[f"beta_{direction}"], self.matrices[f"gamma_{direction}"]
        return (beta > 0) & (gamma == 0)


def prepare_connections(internals: dict, index: int, video_id: str, tau=None) -> Connections:
    """Picks video ``index`` out of a model's internals (``expose_internals`` outputs).

    Args:
        internals: dict with ``beta_va``, ``gamma_va``, ``beta_av``, ``gamma_av``, each
            (videos, 10, 10).
        index: which video.
        video_id: its id.
        tau: the model's threshold, for the title.
    """
    missing = [name for name in MATRICES if name not in internals]
    if missing:
        raise ValueError(f"model outputs lack {missing}; expose the internals first")
    matrices = {}
    for name in MATRICES:
        matrix = np.asarray(internals[name][index], dtype=np.float64)
        if matrix.shape != (ave.NUM_SEGMENTS, ave.NUM_SEGMENTS):
            raise ValueError(f"{name} must be (videos, 10, 10); got {internals[name].shape}")
        matrices[name] = matrix
    return Connections(str(video_id), matrices, None if tau is None else float(tau))


def psp_tau(model) -> float | None:
    """The tau of ``model``'s PSP layer (named ``psp``), or None."""
    try:
        return float(model.get_layer("psp").tau)
    except ValueError:
        return None


def _heatmap(axes, matrix, title, ylabel, xlabel, pruned=None):
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=max(matrix.max(), 1e-8))
    for (row, col), value in np.ndenumerate(matrix):
        is_pruned = pruned is not None and pruned[row, col]
        axes.text(
            col,
            row,
            "0" if is_pruned else f"{value:.2f}".lstrip("0"),
            ha="center",
            va="center",
            fontsize=5.5,
            color="crimson" if is_pruned else ("white" if value > 0.6 * matrix.max() else "black"),
        )
    axes.set_title(title, fontsize=9)
    axes.set_xticks(range(ave.NUM_SEGMENTS))
    axes.set_yticks(range(ave.NUM_SEGMENTS))
    axes.tick_params(labelsize=7)
    axes.set_xlabel(xlabel, fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    return image


def draw_connections(connections: Connections, dpi: int = figures.DEFAULT_DPI):
    """2 x 2 annotated heatmaps: beta (left) and gamma (right) for visual->audio (top) and
    audio->visual (bottom). Entries pruned by tau are written as a red 0."""
    figure = figures.new_figure(*SIZE_INCHES, dpi=dpi)
    grid = figure.subplots(2, 2)
    tau = connections.tau
    tau_text = "?" if tau is None else ("inf" if math.isinf(tau) else f"{tau:g}")
    labels = {"va": ("visual segment", "audio segment"), "av": ("audio segment", "visual segment")}
    for row, direction in enumerate(("va", "av")):
        ylabel, xlabel = labels[direction]
        beta = connections.matrices[f"beta_{direction}"]
        gamma_name = f"gamma_{direction}"
        image = _heatmap(
            grid[row, 0],
            beta,
            f"beta_{direction} (before pruning, {np.count_nonzero(beta)} > 0)",
            ylabel,
            xlabel,
        )
        figure.colorbar(image, ax=grid[row, 0], fraction=0.046, pad=0.04)
        image = _heatmap(
            grid[row, 1],
            connections.matrices[gamma_name],
            f"{gamma_name} (tau = {tau_text}: {connections.kept(gamma_name)} kept)",
            ylabel,
            xlabel,
            connections.pruned(direction),
        )
        figure.colorbar(image, ax=grid[row, 1], fraction=0.046, pad=0.04)
    figure.suptitle(f"{connections.video_id}: PSP connections (red 0 = pruned by tau)", fontsize=10)
    figure.subplots_adjust(left=0.07, right=0.95, top=0.92, bottom=0.06, wspace=0.3, hspace=0.3)
    return figure
