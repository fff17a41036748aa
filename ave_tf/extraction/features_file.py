"""The features file `ave_tf.extract` writes, built resumably one video at a time.

The file is HDF5 with ``audio`` (N, 10, 128) float32, ``visual`` (N, 10, 7, 7, 512) float32
and ``video_id`` (N,) strings: the layout ``ave_tf.predict`` and ``ave_tf.visualize
--features`` read; its attribute ``recipe_version`` is `ave_tf.extraction.RECIPE_VERSION`.
While a run goes, each finished video is written atomically to ``<output>.parts/`` (one
``.npz`` per video, no pickles); an interrupted run finds them there and continues. The final
file is assembled from the parts, written atomically, and the parts are removed. A damaged part
(truncated, overwritten: each array's CRC-32 is checked) counts as missing: the video is
extracted again, with one ``warning:`` line; a damaged settings file is a `UsageError`.

Parts kept by an extraction of recipe 1 (their settings name no recipe: VGGish's fc2 without
its ReLU) are not lost: their audio features go through ``max(x, 0)``, which makes them exactly
the recipe-2 ones (and leaves recipe-2 parts added since unchanged).
"""

import hashlib
import os
import pathlib
import shutil
import sys
import zipfile
import zlib

import numpy as np

from ave_tf.atomic_files import atomic_path, read_json, write_json_atomic
from ave_tf.errors import UsageError
from ave_tf.extraction import RECIPE_VERSION

SUFFIXES = (".h5", ".hdf5")
_SETTINGS = "settings.json"
_RECIPE = "recipe_version"
"""The settings key and the features file attribute that hold `RECIPE_VERSION`."""
_DAMAGE = (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error)
"""What `np.load` raises on a part that is not a complete ``.npz`` of the part's arrays."""


class DamagedPart(Exception):
    """A kept part that does not read back as the arrays it was written with."""


class FeatureParts:
    """The finished videos of a run toward ``output``, kept in ``<output>.parts/``.

    Args:
        output: the features file to build (.h5 / .hdf5).
        settings: JSON values that must match to resume (span start, silent audio, ...); a
            parts folder written with other settings is an error, not silently mixed. The
            recipe version is added to them.

    Attributes:
        from_recipe_1: the kept parts began under recipe 1; their audio gets fc2's ReLU.
    """

    def __init__(self, output: str | os.PathLike, settings: dict):
        self.output = pathlib.Path(output)
        if self.output.suffix not in SUFFIXES:
            raise UsageError(f"--output {self.output}: must end in .h5 or .hdf5")
        self.folder = self.output.with_name(self.output.name + ".parts")
        self.settings = {**settings, _RECIPE: RECIPE_VERSION}
        stored = self._stored_settings()
        self.from_recipe_1 = stored is not None and _RECIPE not in stored
        resumable = {**stored, _RECIPE: RECIPE_VERSION} if self.from_recipe_1 else stored
        if stored is not None and resumable != self.settings:
            raise UsageError(
                f"{self.folder} holds videos extracted with {stored}, not {self.settings}; "
                "delete it to start over or rerun with the same settings"
            )

    def _stored_settings(self) -> dict | None:
        """The settings the kept parts were extracted with (None: no parts folder yet)."""
        path = self.folder / _SETTINGS
        if not path.exists():
            return None
        try:
            stored = read_json(path)
        except (OSError, ValueError) as error:  # JSONDecodeError, UnicodeDecodeError
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UsageError(
                f"{path}: damaged resume settings ({reason}); delete {self.folder} to start over"
            ) from None
        if not isinstance(stored, dict):
            raise UsageError(
                f"{path}: damaged resume settings (a JSON {type(stored).__name__}, not an "
                f"object); delete {self.folder} to start over"
            )
        return stored

    def _part(self, source: str | os.PathLike) -> pathlib.Path:
        key = hashlib.sha256(str(pathlib.Path(source).resolve()).encode()).hexdigest()[:20]
        return self.folder / f"{key}.npz"

    def has(self, source: str | os.PathLike) -> bool:
        """Whether the features of the video file ``source`` are kept and read back whole.

        A damaged part counts as missing (it is replaced when the video is extracted again)
        and gets one ``warning:`` line on stderr naming it.
        """
        part = self._part(source)
        if not part.is_file():
            return False
        try:
            self._load(source)
        except DamagedPart as error:
            print(f"warning: {part}: {error}; extracting {source} again", file=sys.stderr)
            return False
        return True

    def add(self, source: str | os.PathLike, audio: np.ndarray, visual: np.ndarray) -> None:
        """Keeps one video's features (atomically: a crash never leaves half a part)."""
        if not (self.folder / _SETTINGS).is_file():
            write_json_atomic(self.folder / _SETTINGS, self.settings)
        with atomic_path(self._part(source), suffix=".npz") as temporary:
            np.savez(temporary, audio=audio, visual=visual, source=str(source))

    def _load(self, source) -> tuple[np.ndarray, np.ndarray]:
        """The kept audio (10, 128) and visual (10, 7, 7, 512) float32 features of ``source``.

        Raises:
            DamagedPart: the part is not a complete ``.npz`` of two float32 arrays of 2 and 4
                dimensions (reading an array to its end checks its CRC-32).
        """
        try:
            loaded = np.load(self._part(source), allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
                raise DamagedPart("damaged part (not an .npz archive)")
            with loaded as part:
                audio, visual = part["audio"], part["visual"]
        except _DAMAGE as error:
            reason = str(error).splitlines()[0] if str(error) else ""
            raise DamagedPart(f"damaged part ({type(error).__name__}: {reason[:200]})") from None
        shapes = (audio.dtype, audio.ndim, visual.dtype, visual.ndim)
        if shapes != (np.float32, 2, np.float32, 4):
            raise DamagedPart(f"damaged part (arrays {audio.shape} and {visual.shape})")
        return (np.maximum(audio, 0) if self.from_recipe_1 else audio), visual

    def finish(self, videos: list[tuple[str, str | os.PathLike]]) -> pathlib.Path:
        """Writes the features file, one row per ``(video_id, source)`` in order (a source
        may appear twice), atomically; removes the parts; returns the output path."""
        import h5py  # h5py: only when the file is written

        missing = [str(source) for _, source in videos if not self._part(source).is_file()]
        if missing:
            raise ValueError(f"no features kept for {missing[:3]}")
        with atomic_path(self.output, suffix=self.output.suffix) as temporary:
            with h5py.File(temporary, "w") as file:
                file.attrs[_RECIPE] = RECIPE_VERSION
                for row, (_, source) in enumerate(videos):
                    audio, visual = self._load(source)
                    if row == 0:
                        audio_rows = file.create_dataset(
                            "audio", (len(videos), *audio.shape), np.float32
                        )
                        visual_rows = file.create_dataset(
                            "visual", (len(videos), *visual.shape), np.float32
                        )
                    audio_rows[row], visual_rows[row] = audio, visual
                file.create_dataset(
                    "video_id",
                    data=[video_id for video_id, _ in videos],
                    dtype=h5py.string_dtype(),
                )
        shutil.rmtree(self.folder)
        return self.output
