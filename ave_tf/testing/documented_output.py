"""The output lines the documentation shows, checked against what the programs really print.

README.md, the pages of docs/ and the module docstrings of the programs (what ``--help`` prints)
mark a printed line with ``#> `` under the command that prints it; a plain ``# `` line stays a
comment::

    python -m ave_tf.extract --output=out/features.h5 clip1.mp4 clip2.mkv
    #> wrote out/features.h5: 2 videos, audio (2, 10, 128), visual (2, 10, 7, 7, 512)

A ``#> ...`` line stands for any number of lines left out. A documented line matches a real
line of the same shape: numbers (digit runs, decimals, exponents; durations such as ``812ms``,
whatever their unit) and AVE category names are wildcards, and a run of spaces inside a line
matches any run of spaces; everything else (words, file names, punctuation, the indentation)
must be the same. The documented lines must cover the whole output, in order, except where
``#> ...`` stands.

``CHECKS`` names every kind of documented command; ``assert_documented_output(name, printed)``
is how a test compares its program's real output with every example of that kind, and a test
(``tests/documented_output_test.py``) makes sure every marked example belongs to a kind that
some test checks.
"""

import ast
import dataclasses
import pathlib
import re
from collections.abc import Callable

from ave_tf import ave

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = tuple(sorted(init.parent.name for init in REPO.glob("*/__init__.py")))
"""The repository's top-level packages: their programs' docstrings show output too."""
OUTPUT_MARK = "#>"
ELISION = "..."


@dataclasses.dataclass(frozen=True)
class Example:
    """One documented command and the lines shown as its output."""

    where: str  # "docs/serving.md:930" or "ave_tf/predict.py (docstring)"
    command: str  # continuation lines joined, e.g. "python -m ave_tf.predict --local ..."
    lines: tuple[str, ...]  # the text after "#> ", indentation kept; "..." for elisions


def _program(command: str) -> str:
    match = re.search(r"python -m (\S+)", command)
    return match.group(1) if match else ""


CHECKS: dict[str, Callable[[str], bool]] = {
    "predict a features file": lambda c: (
        _program(c) == "ave_tf.predict" and "--video" not in c and "--tfds" not in c
    ),
    "predict a TFDS split": lambda c: _program(c) == "ave_tf.predict" and "--tfds" in c,
    "predict a video on a video-in server": lambda c: (
        _program(c) == "ave_tf.predict" and "--video" in c and "--server" in c
    ),
    "predict a video in-process": lambda c: (
        _program(c) == "ave_tf.predict" and "--video" in c and "--local" in c
    ),
    "visualize": lambda c: _program(c) == "ave_tf.visualize",
    "train": lambda c: _program(c) in ("trainers.fully", "trainers.weakly"),
    # The TF Serving stand-in (a package of its own, not imported here): its one program takes
    # `--model_base_path`, as tensorflow_model_server does.
    "serve": lambda c: "--model_base_path" in c and "--grpc_port" not in c,
    "serve with gRPC": lambda c: "--model_base_path" in c and "--grpc_port" in c,
    "extract": lambda c: _program(c) == "ave_tf.extract",
}
"""Kind of documented command -> which commands it covers (exactly one kind per example)."""


def parse_examples(text: str, where: str, first_line: int = 1) -> list[Example]:
    """The commands of `text` that have ``#> `` lines under them (comment and blank lines
    between a command and its output are allowed)."""
    examples, command, lines, start = [], None, [], 0

    def close():
        if command is not None and lines:
            examples.append(Example(f"{where}:{start}", command, tuple(lines)))

    raw = text.splitlines()
    index = 0
    while index < len(raw):
        stripped = raw[index].strip()
        if stripped.startswith(OUTPUT_MARK):
            lines.append(stripped[len(OUTPUT_MARK) + 1 :].rstrip())
        elif "python -m " in stripped and not stripped.startswith("#"):
            close()
            start, parts = first_line + index, [stripped]
            while parts[-1].endswith("\\") and index + 1 < len(raw):
                index += 1
                parts[-1] = parts[-1][:-1].rstrip()
                parts.append(raw[index].strip())
            command, lines = " ".join(parts), []
        elif stripped.startswith("```") or (stripped and not stripped.startswith("#")):
            close()
            command, lines = None, []
        index += 1
    close()
    return examples


def documents(repo: pathlib.Path = REPO) -> list[pathlib.Path]:
    """The documentation pages: README.md, then docs/*.md by name."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def documented_examples(repo: pathlib.Path = REPO) -> list[Example]:
    """Every marked example of README.md, of docs/*.md and of the module docstrings of the
    repository's top-level packages (tests excluded)."""
    examples = []
    for path in documents(repo):
        examples += parse_examples(path.read_text(), str(path.relative_to(repo)))
    for folder in SOURCE_FOLDERS:
        for path in sorted((repo / folder).rglob("*.py")):
            if path.name.endswith("_test.py"):
                continue
            docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
            if docstring and OUTPUT_MARK in docstring:
                where = f"{path.relative_to(repo)} (docstring)"
                examples += parse_examples(docstring, where)
    return examples


def kind_of(example: Example) -> list[str]:
    """The names in ``CHECKS`` whose commands include the example's (exactly one, when the
    documentation is in order)."""
    return [name for name, covers in CHECKS.items() if covers(example.command)]


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_DURATION = re.compile(r"\d+(?:us|ms|s)\b")  # Keras picks the unit: "812ms/step", "2s/step"
_CATEGORY = re.compile("|".join(re.escape(n) for n in sorted(ave.CATEGORY_NAMES, key=len)[::-1]))


def line_pattern(documented: str) -> re.Pattern:
    """The regular expression a real line must match in full to have `documented`'s shape."""
    indent = re.match(r" *", documented).group()
    tokens = f"({_DURATION.pattern}|{_NUMBER.pattern}|{_CATEGORY.pattern}| +)"
    pieces = re.split(tokens, documented[len(indent) :])
    out = [re.escape(indent)]
    for piece in pieces:
        if not piece:
            continue
        if _CATEGORY.fullmatch(piece):
            out.append(f"(?:{_CATEGORY.pattern})")
        elif _DURATION.fullmatch(piece):
            out.append(_DURATION.pattern)
        elif _NUMBER.fullmatch(piece):
            out.append(_NUMBER.pattern)
        elif piece.isspace():
            out.append(" +")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out))


def _matches(documented: list[str], real: list[str]) -> bool:
    """Whether `real` has `documented`'s lines in order, "..." standing for any lines."""
    if not documented:
        return not real
    if documented[0].strip() == ELISION:
        return any(_matches(documented[1:], real[skip:]) for skip in range(len(real) + 1))
    return (
        bool(real)
        and line_pattern(documented[0]).fullmatch(real[0]) is not None
        and _matches(documented[1:], real[1:])
    )


def mismatch(example: Example, printed: str) -> str | None:
    """None when `printed` has the example's documented shape, else a message showing both."""
    real = printed.rstrip("\n").splitlines()
    if _matches(list(example.lines), real):
        return None
    shown = "\n".join(f"  #> {line}" for line in example.lines)
    got = "\n".join(f"  {line}" for line in real[:40])
    return f"{example.where}: `{example.command}` documents\n{shown}\nbut prints\n{got}"


def assert_documented_output(kind: str, printed: str, repo: pathlib.Path = REPO) -> None:
    """Asserts that every documented example of `kind` (a key of ``CHECKS``) has the shape of
    `printed`, the real output of such a command, and that there is at least one."""
    examples = [e for e in documented_examples(repo) if kind in kind_of(e)]
    assert examples, f"no documented example of {kind!r}"
    problems = [m for m in (mismatch(e, printed) for e in examples) if m]
    assert not problems, "\n\n".join(problems)
