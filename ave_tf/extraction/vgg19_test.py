"""Tests of `ave_tf.extraction.vgg19`: frame sampling, preprocessing, weights file, features."""

import h5py
import keras
import numpy as np
import pytest

from ave_tf.extraction import vgg19
from ave_tf.testing.tiny_extractors import tiny_visual_model

IMAGENET_BGR_MEAN = np.array([103.939, 116.779, 123.68])


@pytest.mark.parametrize("total", [10, 17, 250, 299, 301])
def test_frame_indices_follow_the_recipe(total):
    interval = total // 10
    expected = np.array([[s * interval + i * interval // 16 for i in range(16)] for s in range(10)])
    indices = vgg19.sample_frame_indices(total)
    np.testing.assert_array_equal(indices, expected)
    assert indices.max() < total


def test_too_few_frames_is_a_value_error():
    with pytest.raises(ValueError, match="total_frames must be >= 10; got 9"):
        vgg19.sample_frame_indices(9)


def test_preprocessing_is_caffe_bgr_minus_imagenet_mean():
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    expected = frames[..., ::-1].astype(np.float64) - IMAGENET_BGR_MEAN
    np.testing.assert_allclose(vgg19.preprocess_frames(frames), expected, atol=1e-4)


@pytest.mark.parametrize("batch_size", [7, 64])
def test_visual_features_average_the_sampled_frames_of_each_second(batch_size):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (37, 224, 224, 3), dtype=np.uint8)  # interval 3: repeats
    model = tiny_visual_model(seed=2)
    features = vgg19.visual_features(frames, model, batch_size)
    # NumPy: preprocess, 32x32 block means, the linear map, mean over each second's frames.
    bgr = frames[..., ::-1].astype(np.float64) - IMAGENET_BGR_MEAN
    blocks = bgr.reshape(37, 7, 32, 7, 32, 3).mean(axis=(2, 4))
    per_frame = blocks @ model.layers[-1].get_weights()[0]
    interval = 37 // 10
    expected = np.stack(
        [
            per_frame[[s * interval + i * interval // 16 for i in range(16)]].mean(0)
            for s in range(10)
        ]
    )
    assert features.shape == (10, 7, 7, 512) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-3)


def test_vgg19_block5_pool_shape():
    model = vgg19.vgg19_pool5_model(None)
    frames = np.random.default_rng(4).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    pooled = model.predict_on_batch(vgg19.preprocess_frames(frames))
    assert pooled.shape == (2, 7, 7, 512)
    assert model.layers[-1].name == "block5_pool"


def write_keras_vgg19_file(path, with_top: bool = False, skip: str | None = None, seed=0):
    """Writes random VGG19 weights the way Keras' download files hold them (legacy HDF5:
    ``layer_names``, per layer a group with ``weight_names`` and the datasets
    ``<layer>/<layer>/kernel:0``). Returns {layer: [kernel, bias]}.

    The classifier layers of the full file are written with small stand-in shapes: the
    loader must not read them (the real ones hold 120 M values)."""
    rng = np.random.default_rng(seed)
    values, layers, channels = {}, [("input_1", None)], 3
    for block, (width, count) in enumerate([(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)], 1):
        for index in range(1, count + 1):
            name = f"block{block}_conv{index}"
            values[name] = [
                rng.normal(0, 0.05, (3, 3, channels, width)).astype(np.float32),
                rng.normal(0, 0.05, (width,)).astype(np.float32),
            ]
            layers.append((name, values[name]))
            channels = width
        layers.append((f"block{block}_pool", None))
    if with_top:
        layers.append(("flatten", None))
        for name in ("fc1", "fc2", "predictions"):
            layers.append((name, [np.zeros((4, 4), np.float32), np.zeros((4,), np.float32)]))
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [name.encode() for name, _ in layers if name != skip]
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.2.4"
        for name, weights in layers:
            if name == skip:
                continue
            group = file.create_group(name)
            names = [f"{name}/kernel:0", f"{name}/bias:0"] if weights else []
            group.attrs["weight_names"] = [n.encode() for n in names]
            for weight_name, value in zip(names, weights or [], strict=True):
                group.create_dataset(weight_name, data=value)
    return values


@pytest.fixture(scope="module")
def notop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / vgg19.NOTOP_WEIGHTS_FILE
    return path, write_keras_vgg19_file(path)


def test_loader_reads_the_keras_download_format_like_keras(notop_file):
    path, values = notop_file
    model = vgg19.vgg19_pool5_model(path)
    for name, (kernel, bias) in values.items():
        loaded = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(loaded[0], kernel)
        np.testing.assert_array_equal(loaded[1], bias)
    # Keras' own VGG19(weights=path) reads the same file to the same values.
    reference = keras.applications.VGG19(weights=str(path), include_top=False)
    for ours, theirs in zip(model.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_loader_reads_the_file_with_the_classifier(tmp_path, notop_file):
    path = tmp_path / vgg19.FULL_WEIGHTS_FILE
    values = write_keras_vgg19_file(path, with_top=True, seed=0)
    model = vgg19.vgg19_pool5_model(path)
    np.testing.assert_array_equal(
        model.get_layer("block5_conv4").get_weights()[0], values["block5_conv4"][0]
    )


def test_bad_weights_files_name_the_file_and_layer(tmp_path):
    model = vgg19.vgg19_pool5_model(None)
    missing_layer = tmp_path / "missing.h5"
    write_keras_vgg19_file(missing_layer, skip="block3_conv2")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as file:
        file["x"] = np.zeros(3)
    misshaped = tmp_path / "misshaped.h5"
    write_keras_vgg19_file(misshaped)
    with h5py.File(misshaped, "r+") as file:
        del file["block1_conv1/block1_conv1/bias:0"]
        file["block1_conv1/block1_conv1/bias:0"] = np.zeros(3, np.float32)
    cases = {
        tmp_path / "absent.h5": "absent.h5: no such VGG19 weights file",
        missing_layer: "missing.h5: layer 'block3_conv2' is missing",
        text: "text.h5: not a readable HDF5 weights file",
        foreign: "foreign.h5: not a Keras VGG19 weights file",
        misshaped: r"misshaped.h5: layer 'block1_conv1' has weights of shapes .*\(3,\)",
    }
    for path, message in cases.items():
        with pytest.raises(vgg19.VGG19WeightsError, match=message):
            vgg19.load_vgg19_weights(model, path)
