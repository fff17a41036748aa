"""The library does not import the TF Serving stand-in: no module of ave_tf/, trainers/ or
tfds_ave/ imports `tfserving_standin` (imports inside functions counted)."""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = ("ave_tf", "trainers", "tfds_ave")
STAND_IN = "tfserving_standin"


def imported_modules(source: str) -> list[str]:
    """Every module an `import` or `from ... import` statement of `source` names."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_imported_modules_are_read_inside_functions_too():
    source = "import a.b\ndef f():\n    from tfserving_standin.server import x\n"
    assert imported_modules(source) == ["a.b", "tfserving_standin.server"]


def test_library_does_not_import_the_stand_in():
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for folder in LIBRARY
        for path in sorted((REPO / folder).rglob("*.py"))
        for name in imported_modules(path.read_text())
        if name.split(".")[0] == STAND_IN
    ]
    assert not found, found
