"""The learning-rate schedule equals the official scripts' epoch by epoch."""

import keras
import numpy as np
import pytest

from trainers.schedule import OfficialStepDecay, official_learning_rate


def official_loop(epochs, base, every, until=170, factor=0.8):
    """The official scripts' loop: train epoch e with lr, then maybe decay it."""
    lr, rates = base, []
    for epoch in range(epochs):
        rates.append(lr)
        if (epoch + 1) % every == 0 and epoch < until:
            lr *= factor
    return rates


@pytest.mark.parametrize("every", [60, 80])
def test_schedule_matches_official_loop_every_epoch(every):
    steps = 3
    schedule = OfficialStepDecay(1e-3, steps_per_epoch=steps, every=every)
    expected = official_loop(300, 1e-3, every)
    for epoch in range(300):
        for step in (epoch * steps, epoch * steps + steps - 1):
            got = float(keras.ops.convert_to_numpy(schedule(step)))
            np.testing.assert_allclose(got, expected[epoch], rtol=1e-6, err_msg=f"epoch {epoch}")
        assert official_learning_rate(epoch, 1e-3, 0.8, every, 170) == pytest.approx(
            expected[epoch]
        )


def test_official_decay_epochs():
    fully = official_loop(300, 1.0, 60)
    assert fully[59] == 1.0 and fully[60] == pytest.approx(0.8)
    assert fully[120] == pytest.approx(0.64) and fully[299] == pytest.approx(0.64)
    weakly = official_loop(300, 1.0, 80)
    assert weakly[80] == pytest.approx(0.8) and weakly[160] == pytest.approx(0.64)
    assert weakly[299] == pytest.approx(0.64)


def test_config_round_trip():
    schedule = OfficialStepDecay(1e-3, 7, factor=0.5, every=10, until=50)
    again = OfficialStepDecay.from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()


def test_rejects_bad_steps():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        OfficialStepDecay(1e-3, 0)
