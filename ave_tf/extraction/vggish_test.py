"""Keras VGGish against a plain NumPy forward, with a random TF1 checkpoint written here."""

import os

import numpy as np
import pytest
import tensorflow as tf

from ave_tf.errors import UsageError
from ave_tf.extraction.vggish import (
    VGGishCheckpointError,
    load_vggish_checkpoint,
    vggish_from_checkpoint,
    vggish_model,
)

OFFICIAL_SHAPES = {
    "vggish/conv1/weights": (3, 3, 1, 64),
    "vggish/conv1/biases": (64,),
    "vggish/conv2/weights": (3, 3, 64, 128),
    "vggish/conv2/biases": (128,),
    "vggish/conv3/conv3_1/weights": (3, 3, 128, 256),
    "vggish/conv3/conv3_1/biases": (256,),
    "vggish/conv3/conv3_2/weights": (3, 3, 256, 256),
    "vggish/conv3/conv3_2/biases": (256,),
    "vggish/conv4/conv4_1/weights": (3, 3, 256, 512),
    "vggish/conv4/conv4_1/biases": (512,),
    "vggish/conv4/conv4_2/weights": (3, 3, 512, 512),
    "vggish/conv4/conv4_2/biases": (512,),
    "vggish/fc1/fc1_1/weights": (6 * 4 * 512, 4096),
    "vggish/fc1/fc1_1/biases": (4096,),
    "vggish/fc1/fc1_2/weights": (4096, 4096),
    "vggish/fc1/fc1_2/biases": (4096,),
    "vggish/fc2/weights": (4096, 128),
    "vggish/fc2/biases": (128,),
}
"""The variables of the official ``vggish_model.ckpt`` (slim's conv2d / fully_connected)."""


def write_tf1_checkpoint(path, values: dict) -> str:
    """Writes ``values`` with a graph-mode TF1 ``Saver`` in V1 format, like vggish_model.ckpt."""
    with tf.Graph().as_default():
        feeds, initializers, variables = {}, [], {}
        for index, (name, value) in enumerate(values.items()):
            placeholder = tf.compat.v1.placeholder(value.dtype, value.shape)
            variable = tf.compat.v1.Variable(placeholder, name=f"v{index}")
            feeds[placeholder] = value
            initializers.append(variable.initializer)
            variables[name] = variable
        saver = tf.compat.v1.train.Saver(variables, write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as session:
            session.run(initializers, feeds)
            return saver.save(session, str(path), write_meta_graph=False, write_state=False)


def random_vggish_values(seed: int) -> dict:
    """He-scaled weights so activations neither vanish nor explode over 9 layers."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in OFFICIAL_SHAPES.items():
        if name.endswith("weights"):
            fan_in = int(np.prod(shape[:-1]))
            values[name] = rng.normal(0, np.sqrt(2 / fan_in), shape).astype("float32")
        else:
            values[name] = rng.normal(0, 0.1, shape).astype("float32")
    return values


def numpy_vggish(values: dict, examples: np.ndarray) -> np.ndarray:
    """(batch, 96, 64) -> (batch, 128) in float64: 3x3 SAME convs, 2x2 pools, NHWC flatten,
    three ReLU'd fully connected layers (reference.md section 7: in the 2018 ``vggish_slim.py``
    fc2 too sits inside ``arg_scope(activation_fn=tf.nn.relu)``)."""

    def conv_relu(x, scope):
        kernel, bias = values[f"{scope}/weights"], values[f"{scope}/biases"]
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        height, width = x.shape[1:3]
        out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
        for dy in range(3):
            for dx in range(3):
                out += padded[:, dy : dy + height, dx : dx + width, :] @ kernel[dy, dx]
        return np.maximum(out + bias, 0.0)

    def max_pool(x):
        batch, height, width, channels = x.shape
        return x.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))

    def dense(x, scope):
        return x @ values[f"{scope}/weights"] + values[f"{scope}/biases"]

    values = {name: value.astype("float64") for name, value in values.items()}
    x = examples.astype("float64")[..., None]
    x = max_pool(conv_relu(x, "vggish/conv1"))
    x = max_pool(conv_relu(x, "vggish/conv2"))
    x = max_pool(conv_relu(conv_relu(x, "vggish/conv3/conv3_1"), "vggish/conv3/conv3_2"))
    x = max_pool(conv_relu(conv_relu(x, "vggish/conv4/conv4_1"), "vggish/conv4/conv4_2"))
    x = x.reshape(len(x), -1)
    x = np.maximum(dense(x, "vggish/fc1/fc1_1"), 0.0)
    x = np.maximum(dense(x, "vggish/fc1/fc1_2"), 0.0)
    return np.maximum(dense(x, "vggish/fc2"), 0.0)  # fc2 128 ReLU (reference.md section 7)


@pytest.fixture(scope="module")
def model():
    """One random VGGish for the tests that leave it unchanged (building one takes seconds)."""
    return vggish_model()


def test_model_has_exactly_the_official_variables(model):
    assert model.count_params() == sum(int(np.prod(s)) for s in OFFICIAL_SHAPES.values())
    assert model.output_shape == (None, 128)


@pytest.mark.slow  # ~60 s on 2 busy cores: a 288 MB checkpoint and a float64 NumPy VGGish
def test_checkpoint_loads_and_matches_numpy_forward(tmp_path):
    values = random_vggish_values(seed=0)
    path = write_tf1_checkpoint(tmp_path / "vggish_model.ckpt", values)
    model = vggish_from_checkpoint(path)
    examples = np.random.default_rng(1).normal(0, 2, (2, 96, 64)).astype("float32")
    expected = numpy_vggish(values, examples)
    actual = np.asarray(model(examples))
    scale = np.abs(expected).max()
    assert scale > 0.1  # the random network does not collapse to zero
    assert 0.05 < np.mean(expected == 0) < 0.95  # the ReLU cuts some embeddings, not all
    np.testing.assert_allclose(actual, expected, atol=1e-5 * scale, rtol=0)
    with_channel = np.asarray(model(examples[..., None]))
    np.testing.assert_array_equal(with_channel, actual)


def small_checkpoint(tmp_path, values: dict) -> str:
    return write_tf1_checkpoint(tmp_path / "small.ckpt", values)


def test_missing_and_misshaped_variables_are_named(tmp_path, model):
    path = small_checkpoint(
        tmp_path,
        {
            "vggish/conv1/weights": np.zeros((3, 3, 1, 8), "float32"),
            "vggish/conv1/biases": np.zeros(64, "float32"),
        },
    )
    before = np.asarray(model.get_layer("conv1").bias).copy()
    with pytest.raises(VGGishCheckpointError) as raised:
        load_vggish_checkpoint(model, path)
    message = str(raised.value)
    assert message.startswith(f"VGGish checkpoint {path}: missing vggish/conv2/weights, ")
    assert "vggish/fc2/biases" in message
    assert "vggish/conv1/biases" not in message
    assert "vggish/conv1/weights has shape (3, 3, 1, 8), VGGish needs (3, 3, 1, 64)" in message
    assert isinstance(raised.value, UsageError)
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv1").bias), before)


def test_a_checkpoint_of_another_network_is_not_vggish(tmp_path, model):
    path = small_checkpoint(tmp_path, {"resnet/conv1/weights": np.zeros((3, 3, 1, 8), "float32")})
    with pytest.raises(VGGishCheckpointError, match=r"not a VGGish checkpoint.*resnet/conv1"):
        load_vggish_checkpoint(model, path)


def test_missing_unreadable_and_truncated_files(tmp_path, model):
    with pytest.raises(VGGishCheckpointError, match=r"nowhere\.ckpt: no such file"):
        load_vggish_checkpoint(model, tmp_path / "nowhere.ckpt")

    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(VGGishCheckpointError, match=r"notes\.ckpt: not a readable TensorFlow"):
        load_vggish_checkpoint(model, text)

    path = small_checkpoint(tmp_path, {"vggish/conv1/biases": np.zeros(64, "float32")})
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(open(path, "rb").read()[: os.path.getsize(path) // 2])
    with pytest.raises(VGGishCheckpointError, match=r"truncated\.ckpt: not a readable"):
        load_vggish_checkpoint(model, truncated)
