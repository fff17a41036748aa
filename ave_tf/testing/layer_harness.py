"""Runs a layer through the contract every ave-tf layer must keep.

``check_layer_contract`` checks, in order: the config survives a JSON round trip and holds
every constructor argument; the layer builds from shapes; it calls symbolically and eagerly
with matching shapes; a model around it takes one ``fit`` step with and without
``jit_compile``; a ``.keras`` save/load gives identical outputs.
"""

import json
import pathlib

import keras
import numpy as np
from keras import ops


def _random_inputs(input_shapes: dict, batch: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        name: rng.uniform(0.0, 1.0, (batch, *shape)).astype("float32")
        for name, shape in input_shapes.items()
    }


def _assert_config_round_trip(layer_class, init_kwargs):
    layer = layer_class(**init_kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    for name, value in init_kwargs.items():
        assert name in config, f"get_config() lacks constructor argument {name!r}"
        assert config[name] == value, f"get_config()[{name!r}] = {config[name]!r}, not {value!r}"
    rebuilt = layer_class.from_config(config)
    assert rebuilt.get_config() == layer.get_config()


def _model_around(layer_class, init_kwargs, input_shapes):
    inputs = {name: keras.Input(shape, name=name) for name, shape in input_shapes.items()}
    layer = layer_class(**init_kwargs)
    outputs = layer(*inputs.values())
    return keras.Model(inputs, outputs), layer


def _scalar_per_example(outputs):
    """Sums every output's mean per example: a (batch,) score that touches all outputs."""
    leaves = keras.tree.flatten(outputs)
    return sum(ops.mean(leaf, axis=tuple(range(1, len(leaf.shape)))) for leaf in leaves)


def check_layer_contract(
    layer_class,
    init_kwargs: dict,
    input_shapes: dict,
    tmp_path: pathlib.Path,
    batch: int = 2,
    has_weights: bool = True,
):
    """Runs ``layer_class(**init_kwargs)`` through the whole contract.

    Args:
        layer_class: the layer to check.
        init_kwargs: constructor arguments (JSON-compatible values).
        input_shapes: ordered ``{call argument name: shape without batch}``; the layer is
            called with these tensors positionally, in this order.
        tmp_path: a folder for the ``.keras`` file.
        batch: batch size of the eager inputs.
        has_weights: whether the layer owns weights (then building must create them and a
            ``fit`` step must change them).
    """
    _assert_config_round_trip(layer_class, init_kwargs)

    built = layer_class(**init_kwargs)
    built.build(*[(None, *shape) for shape in input_shapes.values()])
    assert built.built
    assert bool(built.weights) == has_weights, f"weights after build(): {built.weights}"

    model, layer = _model_around(layer_class, init_kwargs, input_shapes)
    symbolic = keras.tree.flatten(model.output)
    data = _random_inputs(input_shapes, batch, seed=0)
    eager = keras.tree.flatten(layer(*[ops.convert_to_tensor(x) for x in data.values()]))
    assert len(eager) == len(symbolic)
    for eager_out, symbolic_out in zip(eager, symbolic, strict=True):
        assert tuple(eager_out.shape[1:]) == tuple(symbolic_out.shape[1:])
        assert eager_out.shape[0] == batch
        assert np.all(np.isfinite(ops.convert_to_numpy(eager_out)))

    for jit_compile in (False, True):
        trainee, _ = _model_around(layer_class, init_kwargs, input_shapes)
        scorer = keras.Model(trainee.input, _scalar_per_example(trainee.output))
        scorer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
        before = [ops.convert_to_numpy(w).copy() for w in scorer.trainable_weights]
        history = scorer.fit(data, np.ones((batch,), "float32"), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = [ops.convert_to_numpy(w) for w in scorer.trainable_weights]
        changed = any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
        assert changed == has_weights, f"fit step (jit_compile={jit_compile}) changed: {changed}"

    path = tmp_path / f"{layer_class.__name__}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = keras.tree.flatten(model.predict(data, verbose=0))
    actual = keras.tree.flatten(reloaded.predict(data, verbose=0))
    for want, got in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(got, want)
