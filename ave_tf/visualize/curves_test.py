"""Curves: results.json series, clear errors for missing keys, the confusion matrix."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ave_tf import ave
from ave_tf.visualize import commands, curves
from ave_tf.visualize.conftest import (
    assert_texts_inside_and_apart,
    expected_pixels,
    make_options,
    png_size,
)


def _results(epochs=12):
    """A results.json shaped like the trainers' (runs[i].epochs / validations)."""
    records = [
        {
            "epoch": e,
            "seconds": 1.0,
            "learning_rate": 1e-3 * 0.8 ** (e >= 6),
            "loss": 3.0 / (e + 1),
            "segment_logits_segment_accuracy": e / epochs,
        }
        for e in range(epochs)
    ]
    validations = [
        {"epoch": e, "accuracy": 0.5 + e / 100, "loss": 2.0 / (e + 1)} for e in (5, 10, 11)
    ]
    run = {"seed": 7, "selected_epoch": 10, "epochs": records, "validations": validations}
    return {"config": {}, "runs": [run], "summary": {}}


def test_prepare_curves_reads_the_series():
    prepared = curves.prepare_curves(_results())
    np.testing.assert_array_equal(prepared.epochs, np.arange(12))
    assert prepared.train_loss[2] == pytest.approx(1.0)
    assert prepared.train_accuracy[6] == pytest.approx(0.5)
    assert prepared.learning_rate[5] == pytest.approx(1e-3)
    assert prepared.learning_rate[6] == pytest.approx(8e-4)
    np.testing.assert_array_equal(prepared.validation_epochs, [5, 10, 11])
    np.testing.assert_allclose(prepared.validation_accuracy, [0.55, 0.6, 0.61])
    assert prepared.selected_epoch == 10 and prepared.label == "run 0 (seed 7)"


@pytest.mark.parametrize("schedule", ["constant", "step"])
def test_learning_rate_panel_writes_its_values_out(schedule):
    """No offset/exponent label ("1e-3" over the panel, beside its title): tick labels are
    the values themselves, a constant rate is named in the title, no text overlaps another."""
    results = _results()
    if schedule == "constant":
        for record in results["runs"][0]["epochs"]:
            record["learning_rate"] = 1e-3
    prepared = curves.prepare_curves(results)
    figure = curves.draw_curves(prepared, title="psp_fully", dpi=80)
    try:
        assert_texts_inside_and_apart(figure)
        for axes in figure.axes:
            assert axes.yaxis.get_offset_text().get_text() == "", axes.get_title()
        rate_axes = figure.axes[2]
        bottom, top = rate_axes.get_ylim()
        assert bottom == 0 and prepared.learning_rate.max() < 0.95 * top
        shown = [
            (tick, label.get_text())
            for tick, label in zip(rate_axes.get_yticks(), rate_axes.get_yticklabels(), strict=True)
            if bottom <= tick <= top
        ]
        assert len(shown) >= 3
        for tick, label in shown:
            assert float(label) == pytest.approx(tick, abs=1e-12), (tick, label)
        expected = {"constant": "learning rate (constant 0.001)", "step": "learning rate"}
        assert rate_axes.get_title() == expected[schedule]
    finally:
        plt.close(figure)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: r.pop("runs"), r"the top level has no 'runs'"),
        (
            lambda r: r["runs"][0]["epochs"][3].pop("learning_rate"),
            r"runs\[0\]\['epochs'\]\[3\] has no 'learning_rate'",
        ),
        (
            lambda r: r["runs"][0]["epochs"][0].pop("segment_logits_segment_accuracy"),
            r"no metric containing 'segment_accuracy'",
        ),
        (
            lambda r: r["runs"][0]["validations"][1].pop("accuracy"),
            r"runs\[0\]\['validations'\] has no 'accuracy'",
        ),
    ],
)
def test_missing_keys_are_named(damage, message):
    results = _results()
    damage(results)
    with pytest.raises(curves.ResultsFormatError, match=message):
        curves.prepare_curves(results, source="run/results.json")


def test_missing_run_and_file(tmp_path):
    with pytest.raises(curves.ResultsFormatError, match="run 2 requested; it has 1"):
        curves.prepare_curves(_results(), run=2)
    with pytest.raises(curves.ResultsFormatError, match="does not exist"):
        curves.load_results(tmp_path)


def test_confusion_formats_and_normalisation(tmp_path):
    matrix = np.arange(29 * 29).reshape(29, 29) % 7
    matrix[4] = 0
    (tmp_path / "eval.json").write_text(json.dumps({"test": {"confusion_matrix": matrix.tolist()}}))
    np.save(tmp_path / "m.npy", matrix)
    np.savetxt(tmp_path / "m.csv", matrix, delimiter=",")
    for name in ("eval.json", "m.npy", "m.csv"):
        loaded, names = curves.load_confusion(tmp_path / name)
        np.testing.assert_array_equal(loaded, matrix)
        assert names[28] == "background"
    normalized = curves.prepare_confusion(matrix)
    np.testing.assert_allclose(normalized[np.arange(29) != 4].sum(1), 1.0)
    assert not normalized[4].any()
    # trainers.evaluate --output_json: per_class keyed by name, written with sorted keys
    report = {"accuracy": 0.5, "per_class": {name: {} for name in ave.CLASS_NAMES}}
    report["confusion_matrix"] = matrix.tolist()
    (tmp_path / "report.json").write_text(json.dumps(report, sort_keys=True))
    assert curves.load_confusion(tmp_path / "report.json")[1] == ave.CLASS_NAMES
    named = {"confusion_matrix": [[1, 0], [0, 1]], "class_names": ["yes", "no"]}
    (tmp_path / "named.json").write_text(json.dumps(named))
    assert curves.load_confusion(tmp_path / "named.json")[1] == ("yes", "no")
    (tmp_path / "bad.json").write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(curves.ResultsFormatError, match="no 'confusion_matrix'"):
        curves.load_confusion(tmp_path / "bad.json")


def test_command_writes_curves_and_confusion(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    np.save(tmp_path / "confusion.npy", np.eye(29) * 5 + 1)
    options = make_options(
        "curves",
        tmp_path / "out",
        results=str(tmp_path),
        confusion=str(tmp_path / "confusion.npy"),
        svg=True,
    )
    written = commands.run(options)
    names = ["curves.png", "curves.svg", "confusion.png", "confusion.svg"]
    assert [p.name for p in written] == names
    assert png_size(written[0]) == expected_pixels(curves.CURVES_INCHES)
    assert png_size(written[2]) == expected_pixels(curves.CONFUSION_INCHES)
