"""Every output line the documentation shows (``#> `` lines, `ave_tf.testing.documented_output`)
belongs to a kind of command that a test runs and compares; the comparison itself."""

import pathlib

import pytest

from ave_tf.testing import documented_output as documented

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_documented_output_has_one_kind_and_each_kind_is_checked_by_a_test():
    examples = documented.documented_examples()
    assert len(examples) >= 10
    for example in examples:
        kinds = documented.kind_of(example)
        assert len(kinds) == 1, f"{example.where}: `{example.command}` is of kinds {kinds}"
    tests = "\n".join(
        path.read_text()
        for folder in ("tests", "ave_tf", "trainers", "tfds_ave")
        for path in (REPO / folder).rglob("*_test.py")
    )
    for kind in documented.CHECKS:
        checked = f'assert_documented_output("{kind}"' in tests
        assert checked, f"no test checks {kind!r}"
        assert any(kind in documented.kind_of(e) for e in examples), f"{kind!r} is not documented"


def test_examples_are_read_from_code_blocks_and_docstrings():
    text = """Prose mentioning python -m x.y is not a command.

    python -m tfserving_standin.serve --model_base_path m \\
        --port 1
    # a comment, not output
    #> serving m version(s) [1] at http://127.0.0.1:1/v1/models/m
    #>   ...
    python -m trainers.fully
    plain text ends an example
    #> not after a command
"""
    (example,) = documented.parse_examples(text, "t")
    assert example.command == "python -m tfserving_standin.serve --model_base_path m --port 1"
    assert example.lines == ("serving m version(s) [1] at http://127.0.0.1:1/v1/models/m", "  ...")
    assert example.where == "t:3"


@pytest.mark.parametrize(
    "documented_line, real_line, same",
    [
        (
            "  Goat from 0 s to 3 s (confidence 0.12)",
            "  Chainsaw from 4 s to 10 s (confidence 1)",
            True,
        ),
        ("syn20000070 (Goat):", "syn123 (Rodents, rats, mice):", True),
        ("     1             59     76.15", "     2              3      8.5", True),
        ("loss: 0.0000e+00 - acc: 0.5", "loss: 1.5e-07 - acc: 12", True),
        ("4/4 - 3s - 812ms/step - loss: 1", "2/2 - 15s - 4s/step - loss: 1", True),
        ("4/4 - 3s - 812ms/step - loss: 1", "2/2 - 15s - 4s/step - acc: 1", False),
        (
            "wrote out/visualizations/timeline_my_videos_0.png",
            "wrote visualizations/x_0.png",
            False,
        ),
        ("  Goat from 0 s to 3 s", "Goat from 0 s to 3 s", False),  # indentation
        ("video_0001 (Church bell):", "syn20000070 (Goat):", False),  # the id's shape
        ("Goat from 0 s to 3 s", "Goat from 0 s to 3 s (confidence 0.12)", False),  # whole line
        ("exported: saved_models/psp_fully/1", "exported: /tmp/x/psp_fully/1", False),
    ],
)
def test_a_line_matches_when_only_numbers_categories_and_spacing_differ(
    documented_line, real_line, same
):
    assert bool(documented.line_pattern(documented_line).fullmatch(real_line)) == same


def test_documented_lines_cover_the_whole_output_except_at_elisions():
    example = documented.Example("t", "python -m p", ("a 1", "...", "c 3"))
    assert documented.mismatch(example, "a 5\nb\nb\nc 7\n") is None
    assert documented.mismatch(example, "a 5\nc 7") is None
    assert "prints\n  a 5\n  c 7\n  d" in documented.mismatch(example, "a 5\nc 7\nd")
    assert documented.mismatch(example, "b\na 5\nc 7") is not None
    assert documented.mismatch(example, "c 7\na 5") is not None


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    (command,) = [
        line
        for line in readme.splitlines()
        if line.startswith("python3 -m venv .venv") and "pytest" in line
    ]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci
    assert '-m "not slow"' in command and "-m slow" in command
    assert command.count("timeout ") == command.count("-m pytest") == 2
