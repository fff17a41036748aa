"""README.md and docs/*.md cannot drift from the repository: every relative link and image
resolves (a ``#anchor`` to a heading of its page), every ``python -m MODULE`` names a module that
exists, and every ``--flag`` written after one of the project's programs is a flag it defines.

Fast and without TensorFlow: modules are found with `importlib.machinery.PathFinder` (no
package is imported), and a program's flags are read from its own ``--helpfull``, run once per
program in a subprocess (the programs parse their flags before importing TensorFlow)."""

import functools
import importlib.machinery
import os
import re
import subprocess
import sys

import pytest

from ave_tf.testing import documented_output

REPO = documented_output.REPO
DOCUMENTS = documented_output.documents()
PROJECT_PACKAGES = ("ave_tf", "trainers", "tfds_ave", "tfserving_standin", "benchmarks")
MAX_README_LINES = 250

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`]+`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_PROGRAM = re.compile(r"python3? -m\s+([\w.]+)(.*)", re.DOTALL)
_FLAG = re.compile(r"^\[?--([A-Za-z][\w-]*)")
_HELP_FLAG = re.compile(r"^\s+(?:-\w,)?--(?:\[no\])?([A-Za-z][\w-]*):", re.MULTILINE)


def _relative(path):
    return str(path.relative_to(REPO))


def _prose(text: str) -> str:
    """`text` without its fenced code blocks and inline code (where links do not render)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", path.read_text()), re.MULTILINE)
    return {anchor(heading) for heading in headings}


def links(path) -> list[str]:
    """The relative link and image targets of a page (web addresses left out)."""
    targets = _LINK.findall(_prose(path.read_text()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def commands(text: str) -> list[str]:
    """Every command of `text` that runs ``python -m``: the lines of code blocks (backslash
    continuations joined, a ``#`` comment cut off) and inline code, split at ``&&``, ``;``
    and ``|``; each starts at its ``python -m``."""
    pieces = []
    for block in _FENCE.findall(text):
        lines = block.splitlines()[1:-1]
        joined, parts = [], []
        for line in lines:
            parts.append(line.strip())
            if parts[-1].endswith("\\"):
                parts[-1] = parts[-1][:-1]
                continue
            joined.append(" ".join(parts))
            parts = []
        pieces += joined + ([" ".join(parts)] if parts else [])
    pieces += [
        span.strip("`").replace("\n", " ") for span in _INLINE_CODE.findall(_FENCE.sub("", text))
    ]
    found = []
    for piece in pieces:
        piece = re.sub(r"(^|\s)#.*", "", piece)  # a shell comment
        for part in re.split(r"&&|;|\|", piece):
            for match in re.finditer(r"python3? -m\s+[\w.]+", part):
                rest = part[match.start() :]
                following = re.search(r".python3? -m\s", rest)
                found.append(rest[: following.start() + 1] if following else rest)
    return found


def program(command: str) -> tuple[str, list[str]]:
    """(module, the ``--flag`` names written after it) of a ``python -m`` command."""
    module, rest = _PROGRAM.match(command).groups()
    flags = [m.group(1) for token in rest.split() if (m := _FLAG.match(token))]
    return module, flags


def module_exists(name: str) -> bool:
    """Whether ``python -m name`` finds a module (a package needs a ``__main__``), without
    importing it or its packages."""
    parts, path, spec = name.split("."), [str(REPO), *sys.path], None
    for depth in range(1, len(parts) + 1):
        if path is None:  # a module is not a package: it has no submodules
            return False
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), path)
        if spec is None:
            return False
        path = spec.submodule_search_locations
    if spec.submodule_search_locations is not None:
        return importlib.machinery.PathFinder.find_spec(f"{name}.__main__", path) is not None
    return True


@functools.cache
def defined_flags(module: str) -> frozenset[str]:
    """The flags `module` defines, its own and absl's, as its ``--helpfull`` lists them."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    helped = subprocess.run(
        [sys.executable, "-m", module, "--helpfull"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = frozenset(_HELP_FLAG.findall(helped.stdout + helped.stderr))
    assert "helpfull" in names, (
        f"python -m {module} --helpfull lists no absl flags:\n{helped.stderr}"
    )
    booleans = re.findall(r"^\s+--\[no\]([A-Za-z][\w-]*):", helped.stdout, re.MULTILINE)
    assert "verbosity" in names  # listed as "-v,--verbosity:"
    return names | {f"no{name}" for name in booleans}


def documented_commands() -> list[tuple[str, str]]:
    return [
        (_relative(path), command) for path in DOCUMENTS for command in commands(path.read_text())
    ]


def test_readme_is_short_and_lists_every_docs_page():
    readme = REPO / "README.md"
    assert len(readme.read_text().splitlines()) <= MAX_README_LINES
    listed = {target.split("#")[0] for target in links(readme)}
    for page in DOCUMENTS[1:]:
        assert _relative(page) in listed, f"README.md does not link {_relative(page)}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=_relative)
def test_every_relative_link_and_image_resolves(path):
    problems = []
    for target in links(path):
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    assert not problems, f"{_relative(path)}:\n" + "\n".join(problems)


def test_every_python_dash_m_names_a_module_and_only_flags_it_defines():
    problems, checked = [], 0
    for where, command in documented_commands():
        module, flags = program(command)
        if not module_exists(module):
            problems.append(f"{where}: `{command}`: no module {module}")
            continue
        if module.split(".")[0] not in PROJECT_PACKAGES or not flags:
            continue
        unknown = sorted(set(flags) - defined_flags(module))
        checked += len(flags)
        if unknown:
            problems.append(f"{where}: `{command}`: {module} defines no --{', --'.join(unknown)}")
    assert not problems, "\n".join(problems)
    assert checked >= 50  # the parser still finds the documented flags


def test_commands_are_read_from_code_blocks_continuations_and_inline_code():
    text = """Run `python -m a.b --x=1 --no_y` then
```sh
python -m c.d --p \\
    --q=2 [--r=3] # --not_a_flag
python -m e && python -m f --s | tail
```
"""
    found = sorted(program(command) for command in commands(text))
    assert found == [
        ("a.b", ["x", "no_y"]),
        ("c.d", ["p", "q", "r"]),
        ("e", []),
        ("f", ["s"]),
    ]


def test_anchors_follow_github():
    assert anchor("Pipelines (`ave_tf/data.py`)") == "pipelines-ave_tfdatapy"
    assert anchor("AVEL, the paper's baseline") == "avel-the-papers-baseline"
    assert anchor("Fresh machine: two commands") == "fresh-machine-two-commands"
