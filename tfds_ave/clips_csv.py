"""The ``clips`` config's manual directory: your own labelled clips, listed in a CSV file.

``clips.csv`` (the name is the builder config field ``clips_csv``) has the header
``video_path,split,category,start,end`` and one row per event: the video file (relative to
manual_dir, absolute, or a ``gs://``-style path), the split it belongs to (any name of
letters, digits and ``_``: ``train``, ``validation``, ``test``, ...), the event's category (any
text) and its segments ``[start, end)`` of the 10 s from the clip's start (integers 0..10;
``start == end``: no event segment). The same file on several rows is extracted once and gives
one example per row, as AVE's videos annotated twice do. The category ``background`` marks a
clip without any event (then ``start == end``), like AVE's ``train_background`` videos.

The classes are the CSV's categories sorted by name, then ``background`` (the last class, as in
AVE); ``segment_labels``, ``category``, ``video_label`` and ``prob_label`` are derived from them
by `tfds_ave.annotations` exactly as for AVE.
"""

import csv
import io
import re

import numpy as np
from etils import epath

from ave_tf.extraction.decode import NO_SUCH_FILE, video_file_problem
from tfds_ave import annotations
from tfds_ave.videos import Plan, VideosError, jobs_of_rows, missing_message

CLIPS_CSV = "clips.csv"
HEADER = ("video_path", "split", "category", "start", "end")
BACKGROUND_NAME = "background"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_ASCII_DIGITS = re.compile(r"^[0-9]+$")  # int() would also read "١" (Arabic-Indic) as 1

LAYOUT = f"""\
Expected layout of manual_dir for the 'clips' config:
  {CLIPS_CSV}   header {",".join(HEADER)}, one row per event, e.g.
             videos/dog_park.mp4,train,Dog barking,2,7
  the video files the CSV names (relative to manual_dir, or absolute)
  vggish_model.ckpt, vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (or the paths in the
  builder config fields vggish_checkpoint and vgg19_weights)"""


class ClipsCsvError(VideosError):
    """A malformed clips CSV; the message names the file, line, field and value."""


def _video_path(directory: epath.Path, raw: str) -> epath.Path:
    return epath.Path(raw) if "://" in raw or raw.startswith("/") else directory / raw


def _segment(where: str, field: str, text: str) -> int:
    if not _ASCII_DIGITS.match(text):
        raise ClipsCsvError(
            f"{where}: {field} must be an integer 0..10 in ASCII digits, got {text!r}"
        )
    value = int(text)
    if not 0 <= value <= 10:
        raise ClipsCsvError(f"{where}: {field} must lie in [0, 10], got {value}")
    return value


def read_rows(path: epath.Path) -> list[dict]:
    """The CSV's rows as ``{"line", "video_path", "split", "category", "start", "end"}``.

    A UTF-8 byte order mark before the header (spreadsheet exports write one) is skipped.

    Raises:
        ClipsCsvError: naming the file and line, for a wrong header, a wrong field count, an
            empty field, a bad split name, a start/end that is not an integer in [0, 10]
            written in ASCII digits, ``start > end``, a background row with event segments, or
            no rows at all.
    """
    try:  # bytes, then decode: epath's read_text ignores its encoding argument
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ClipsCsvError(f"{path}: not UTF-8 text ({error})") from None
    lines = csv.reader(io.StringIO(text))
    header = tuple(field.strip() for field in next(lines, ()))
    if header != HEADER:
        raise ClipsCsvError(f"{path} line 1: header must be {','.join(HEADER)}, got {header}")
    rows = []
    for number, fields in enumerate(lines, start=2):
        if not fields or all(not field.strip() for field in fields):
            continue
        where = f"{path} line {number}"
        if len(fields) != len(HEADER):
            raise ClipsCsvError(f"{where}: expected {len(HEADER)} fields, got {len(fields)}")
        row = dict(zip(HEADER, (field.strip() for field in fields), strict=True))
        for field in HEADER:
            if not row[field]:
                raise ClipsCsvError(f"{where}: {field} is empty")
        if not _SPLIT_NAME.match(row["split"]) or row["split"] == "all":
            raise ClipsCsvError(
                f"{where}: split {row['split']!r} must be letters, digits and '_' (not 'all')"
            )
        row["start"] = _segment(where, "start", row["start"])
        row["end"] = _segment(where, "end", row["end"])
        if row["start"] > row["end"]:
            raise ClipsCsvError(
                f"{where}: start={row['start']} must be <= end={row['end']} "
                "(start == end: no event segment)"
            )
        if row["category"] == BACKGROUND_NAME and row["start"] != row["end"]:
            raise ClipsCsvError(
                f"{where}: a {BACKGROUND_NAME!r} clip has no event: start must equal end"
            )
        rows.append({"line": number, **row})
    if not rows:
        raise ClipsCsvError(f"{path}: no rows after the header")
    return rows


def class_names(rows: list[dict]) -> list[str]:
    """The CSV's categories sorted by name, then ``background``."""
    return sorted({row["category"] for row in rows} - {BACKGROUND_NAME}) + [BACKGROUND_NAME]


def plan_clips(
    directory: epath.PathLike, csv_name: str = CLIPS_CSV, skip_missing: bool = False
) -> tuple[list[str], Plan]:
    """Checks the CSV and that every video path names a file; plans the build.

    Args:
        directory: manual_dir.
        csv_name: the CSV, relative to ``directory`` (or absolute).
        skip_missing: build without the rows whose video file is missing.

    Returns:
        The class names and the plan (splits in order of first appearance in the CSV).

    Raises:
        ClipsCsvError: a missing or malformed CSV, or a video path that names a directory
            (or another non-file), with the first row that gives it.
        VideosError: missing video files (every one listed) unless ``skip_missing``.
    """
    directory = epath.Path(directory)
    source = _video_path(directory, csv_name)
    if not source.exists():
        raise ClipsCsvError(f"{source}: no such file.\n{LAYOUT}")
    rows = read_rows(source)
    names = class_names(rows)
    ids = {name: index for index, name in enumerate(names)}
    paths = {row["video_path"]: _video_path(directory, row["video_path"]) for row in rows}
    problems = {raw: video_file_problem(path) for raw, path in paths.items()}
    for row in rows:
        problem = problems[row["video_path"]]
        if problem not in (None, NO_SUCH_FILE):
            raise ClipsCsvError(
                f"{source} line {row['line']}: video_path {row['video_path']!r} {problem}"
            )
    missing = sorted(raw for raw, problem in problems.items() if problem == NO_SUCH_FILE)
    if missing and not skip_missing:
        raise VideosError(missing_message(str(source), missing, len(paths), "listed videos"))
    rows = [row for row in rows if row["video_path"] not in missing]
    categories = np.array([ids[row["category"]] for row in rows], np.int64)
    starts = np.array([row["start"] for row in rows], np.int64)
    ends = np.array([row["end"] for row in rows], np.int64)
    labels = annotations.label_fields(categories, starts, ends, num_classes=len(names))
    by_split: dict[str, list] = {}
    for row, fields in zip(rows, labels, strict=True):
        path = paths[row["video_path"]]
        video_id = path.name.rsplit(".", 1)[0]
        key = f"{row['line']:06d}_{video_id}"
        by_split.setdefault(row["split"], []).append(
            (video_id, path, key, {"video_id": video_id, **fields})
        )
    splits = {split: jobs_of_rows(examples) for split, examples in by_split.items()}
    return names, Plan(splits, [(raw, "no video file") for raw in missing])
