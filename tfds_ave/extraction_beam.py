"""Feature extraction as an Apache Beam transform: video files in, TFDS examples out.

``ExtractSplit(jobs, spec, failures_prefix)`` is what the ``videos`` and ``clips`` configs of
``tfds_ave`` return from ``_generate_examples``: one element per distinct video file
(`VideoJob`), extracted by `ExtractExamples`, a ``DoFn`` that builds its
`ave_tf.extraction.extractor.FeatureExtractor` once per worker (``setup``) and calls
``FeatureExtractor.extract`` (the call ``python -m ave_tf.extract`` makes, so both give the same
features for the same file). A video that cannot be decoded is not an example: the worker
writes its id, path and reason at once to a small JSON file in ``failures_dir`` (whatever else
happens later in the pipeline), which the builder reads when the pipeline has ended
(`read_failures`) to fail the build with the full list.

Progress is reported through Beam metrics in the namespace ``tfds_ave``: the counters
``videos_done`` and ``videos_failed`` and the distribution ``milliseconds_per_video``.
"""

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator

import apache_beam as beam
from etils import epath

from ave_tf.extraction import decode
from ave_tf.extraction.extractor import FeatureExtractor

METRICS_NAMESPACE = "tfds_ave"


@dataclasses.dataclass(frozen=True)
class VideoJob:
    """One video file and the examples it gives.

    Attributes:
        video_id: the video's name in messages (AVE: the YouTube id; clips: the file's stem).
        path: the video file (local, or any path ``etils.epath`` reads, e.g. ``gs://``).
        examples: ``(key, fields)`` per example of this file (AVE annotates some videos
            twice); ``fields`` holds every feature but ``audio`` and ``visual``.
    """

    video_id: str
    path: str
    examples: tuple[tuple[str, dict], ...]


@dataclasses.dataclass(frozen=True)
class ExtractorSpec:
    """How each worker builds its `FeatureExtractor` (plain strings: pickled to the workers).

    Attributes:
        vggish_checkpoint: the official ``vggish_model.ckpt``.
        vgg19_weights: Keras' VGG19 weights file.
        batch_size: frames per VGG19 call.
        factory: ``"module:callable"``; when set, ``callable(batch_size=...)`` returns the
            extractor instead of loading the two files (a model of your own, or the tests' tiny
            random models). The module must be importable on every worker.
    """

    vggish_checkpoint: str
    vgg19_weights: str
    batch_size: int = 32
    factory: str = ""

    def build(self):
        """The `FeatureExtractor` (remote model files are first copied to a local folder)."""
        if self.factory:
            return import_factory(self.factory)(batch_size=self.batch_size)
        with local_copy(self.vggish_checkpoint) as vggish, local_copy(self.vgg19_weights) as vgg19:
            return FeatureExtractor.from_files(vggish, vgg19, self.batch_size)


def import_factory(name: str):
    """The callable named ``"module:attribute[.attribute]"``; a ``ValueError`` naming it."""
    module_name, _, attributes = name.partition(":")
    if not module_name or not attributes:
        raise ValueError(f"extractor_factory {name!r}: expected 'module:callable'")
    try:
        target = importlib.import_module(module_name)
        for attribute in attributes.split("."):
            target = getattr(target, attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"extractor_factory {name!r}: cannot import it ({error})") from None
    return target


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """``path`` itself when it is a local file name, else a temporary local copy of it
    (PyAV and h5py read local files only)."""
    if "://" not in path:
        yield path
        return
    source = epath.Path(path)
    with tempfile.TemporaryDirectory(prefix="tfds_ave_") as folder:
        local = os.path.join(folder, source.name)
        source.copy(local)
        yield local


class ExtractExamples(beam.DoFn):
    """``VideoJob`` -> ``(key, example)`` per example of the video; a video that fails to
    decode gives none and ``(video_id, path, reason)`` in ``failures_dir``."""

    def __init__(self, spec: ExtractorSpec, failures_dir: str):
        self._spec = spec
        self._failures_dir = failures_dir
        self._extractor = None
        self._done = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_done")
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_failed")
        self._milliseconds = beam.metrics.Metrics.distribution(
            METRICS_NAMESPACE, "milliseconds_per_video"
        )

    def setup(self):
        self._extractor = self._spec.build()

    def process(self, job: VideoJob):
        started = time.perf_counter()
        try:
            with local_copy(job.path) as path:
                audio, visual = self._extractor.extract(path)
        except decode.ClipError as error:
            self._failed.inc()
            logging.error("tfds_ave: %s (%s) failed: %s", job.video_id, job.path, error.reason)
            record_failure(self._failures_dir, job, error.reason)
            return
        seconds = time.perf_counter() - started
        self._done.inc()
        self._milliseconds.update(int(seconds * 1000))
        logging.info("tfds_ave: extracted %s in %.1f s", job.video_id, seconds)
        for key, fields in job.examples:
            yield key, {**fields, "audio": audio, "visual": visual}


class ExtractSplit(beam.PTransform):
    """The examples of one split: its videos, each extracted once, through `ExtractExamples`.

    Args:
        jobs: the split's videos.
        spec: how workers build the extractor.
        failures_dir: where workers record the videos that fail (`read_failures`).
    """

    def __init__(self, jobs: list[VideoJob], spec: ExtractorSpec, failures_dir: str):
        super().__init__()
        self._jobs = jobs
        self._spec = spec
        self._failures_dir = failures_dir

    def expand(self, pbegin):
        return (
            pbegin
            | "Videos" >> beam.Create(self._jobs, reshuffle=True)
            | "Extract" >> beam.ParDo(ExtractExamples(self._spec, self._failures_dir))
        )


def record_failure(folder: str, job: VideoJob, reason: str) -> None:
    """Writes ``[video_id, path, reason]`` to ``folder/<hash of the path>.json`` (a retried
    bundle rewrites the same file)."""
    folder = epath.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(job.path.encode()).hexdigest()
    temporary = folder / f".{name}.tmp"
    temporary.write_text(json.dumps([job.video_id, job.path, reason]))
    temporary.replace(folder / f"{name}.json")


def read_failures(folder: epath.Path) -> list[tuple[str, str, str]]:
    """Every ``(video_id, path, reason)`` recorded in ``folder``, sorted by id; the folder is
    removed."""
    failures = []
    if folder.exists():
        for path in folder.glob("*.json"):
            failures.append(tuple(json.loads(path.read_text())))
        folder.rmtree()
    return sorted(failures)


def metric_totals(result) -> dict[str, float]:
    """``videos_done``, ``videos_failed`` and ``mean_seconds_per_video`` of a finished
    pipeline (what the runner reports; 0 when it reports nothing)."""
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE))
    totals = {"videos_done": 0, "videos_failed": 0, "mean_seconds_per_video": 0.0}
    for counter in query["counters"]:
        totals[counter.key.metric.name] += counter.committed or 0
    for distribution in query["distributions"]:
        value = distribution.committed
        if value is not None and value.count:
            totals["mean_seconds_per_video"] = value.sum / value.count / 1000
    return totals
