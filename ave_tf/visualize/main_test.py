"""The CLI end to end in a subprocess, with no display."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from ave_tf.errors import UsageError
from ave_tf.testing.documented_output import assert_documented_output
from ave_tf.visualize import __main__ as visualize_main
from ave_tf.visualize.curves_test import _results


def _run(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "ave_tf.visualize", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_files_and_reports_them(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    done = _run("curves", "--results=results.json", "--out=figs", "--dpi=30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote figs/curves.png" in done.stdout
    assert (tmp_path / "figs" / "curves.png").stat().st_size > 0


def test_cli_errors_are_one_clear_line(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"runs": [{"seed": 1}]}))
    done = _run("curves", "--results=results.json", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: results.json: runs[0] has no 'epochs'")


def test_cli_bad_features_file_is_exit_2_and_one_line(tmp_path):
    done = _run("timeline", "--model=m.keras", "--features=absent.npz", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: absent.npz: features file does not exist"]


def test_flags_become_options_and_unknown_commands_are_refused():
    flag_values = flags.FlagValues()
    visualize_main.define_flags(flag_values)
    flag_values(["visualize", "--videos=2,5", "--svg"])
    options = visualize_main.options_from_flags("tsne", flag_values)
    assert (options.videos, options.svg, options.perplexity) == ((2, 5), True, 30.0)
    with pytest.raises(UsageError, match="sub-command must be one of timeline, connections"):
        visualize_main.options_from_flags("plot", flag_values)
    with pytest.raises(UsageError, match="usage: python -m ave_tf.visualize"):
        visualize_main.main(["visualize"])


def test_main_prints_what_the_documentation_shows(
    tmp_path, monkeypatch, capsys, model_file, videos_arrays
):
    monkeypatch.chdir(tmp_path)
    np.savez("my_videos.npz", audio=videos_arrays["audio"], visual=videos_arrays["visual"])
    flag_values = flags.FlagValues()
    visualize_main.define_flags(flag_values)
    flag_values(["visualize", f"--model={model_file}", "--features=my_videos.npz", "--videos=0,3"])
    read_flags = visualize_main.options_from_flags
    monkeypatch.setattr(visualize_main, "options_from_flags", lambda c: read_flags(c, flag_values))
    assert visualize_main.main(["visualize", "timeline"]) == 0
    assert_documented_output("visualize", capsys.readouterr().out)
    assert sorted(path.name for path in (tmp_path / "out" / "visualizations").iterdir()) == [
        "timeline_my_videos_0.png",
        "timeline_my_videos_3.png",
    ]
