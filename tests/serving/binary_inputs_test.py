"""Tests of binary inputs: the `predict_bytes` signature, REST `{"b64": ...}` values, the
client's `binary=True`, `predict --binary`, and the XLA-compiled export."""

import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_test import _expected_timelines, _run_predict
from server_test import PREDICT, assert_healthy
from serving_helpers import MODEL_NAME, http_call, random_videos, serving_in_thread
from stand_in import stand_in_model

from ave_tf import ave, export
from ave_tf.serving import client as client_module
from ave_tf.serving.client import BadRequestError, ServingClient, binary_inputs
from tfserving_standin import rest_api
from tfserving_standin.repository import ModelRepository, load_version
from tfserving_standin.rest_api import RestError, TensorSpec, string_array
from tfserving_standin.server import ModelServer

BYTES = "predict_bytes"
STRING_SPEC = TensorSpec(shape=(None,), dtype=np.dtype(object), type_name="string")


def _raw(array: np.ndarray) -> list[bytes]:
    """One little-endian float32 byte string per video."""
    return [video.astype("<f4").tobytes() for video in array]


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def _assert_same_outputs(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        if value.dtype.kind in "SO":
            np.testing.assert_array_equal(got[name].astype(str), value.astype(str), name)
        elif value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name].astype(value.dtype), value, name)


def test_predict_bytes_equals_serving_default_in_process(export_dir):
    loaded = tf.saved_model.load(str(export_dir / MODEL_NAME / "1"))
    audio, visual = random_videos(3, seed=31)
    want = loaded.signatures["serving_default"](audio=audio, visual=visual)
    got = loaded.signatures[BYTES](
        audio_bytes=tf.constant(_raw(audio)), visual_bytes=tf.constant(_raw(visual))
    )
    _assert_same_outputs(
        {k: v.numpy() for k, v in got.items()}, {k: v.numpy() for k, v in want.items()}
    )
    _, inputs = loaded.signatures[BYTES].structured_input_signature
    assert {name: spec.dtype for name, spec in inputs.items()} == {
        "audio_bytes": tf.string,
        "visual_bytes": tf.string,
    }
    assert inputs["visual_bytes"].shape.as_list() == [None]


def test_feature_bytes_are_the_contract_sizes():
    assert export.feature_bytes("audio") == 10 * 128 * 4 == 5_120
    assert export.feature_bytes("visual") == 10 * 7 * 7 * 512 * 4 == 1_003_520
    assert client_module.BYTES_SIGNATURE == export.BYTES_SIGNATURE_NAME
    assert client_module.BYTES_SUFFIX == export.BYTES_SUFFIX


@pytest.mark.parametrize(
    ("batch", "audio_cut", "visual_nan", "message"),
    [
        (2, 4, False, "Input 'audio_bytes': every value must hold 5120 bytes (10x128 little-endian "
         "float32); the values hold 5120 5116 bytes"),
        (2, 0, True, "Input 'visual_bytes' has a non-finite value (NaN or Infinity)"),
        # one video runs XLA-compiled, where the finiteness test is fused with the network
        (1, 0, True, "Input 'visual_bytes' has a non-finite value (NaN or Infinity)"),
    ],
)  # fmt: skip
def test_bad_bytes_are_400_naming_the_input(loaded_v1, batch, audio_cut, visual_nan, message):
    audio, visual = random_videos(batch, seed=32)
    if visual_nan:
        visual[-1, 3, 0, 0, 7] = np.nan
    audio_bytes = _raw(audio)
    audio_bytes[-1] = audio_bytes[-1][: len(audio_bytes[-1]) - audio_cut]
    arrays = {
        "audio_bytes": np.array(audio_bytes, dtype=object),
        "visual_bytes": np.array(_raw(visual), dtype=object),
    }
    with pytest.raises(RestError) as raised:
        loaded_v1.predict(BYTES, arrays)
    assert raised.value.status == 400
    assert raised.value.message == message


@pytest.mark.parametrize("request_format", ["row", "columnar"])
def test_binary_client_over_rest_equals_in_process(server, loaded_v1, request_format):
    audio, visual = random_videos(2, seed=33)
    want = loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})
    client = ServingClient(server.url, MODEL_NAME, request_format=request_format, binary=True)
    assert client.signature == BYTES
    _assert_same_outputs(client.predict_outputs(audio, visual), want)
    body, _ = client.encode_request(audio, visual)
    document = json.loads(body)
    assert document["signature_name"] == BYTES
    assert len(body) < 1.4 * (audio.nbytes + visual.nbytes)  # base64: 4/3 of the raw bytes


def _columnar(audio_value, visual_value) -> bytes:
    document = {
        "signature_name": BYTES,
        "inputs": {"audio_bytes": [audio_value], "visual_bytes": [visual_value]},
    }
    return json.dumps(document).encode()


def test_bad_binary_requests_are_400_naming_the_input(server):
    audio, visual = random_videos(1, seed=34)
    audio_ok, visual_ok = _b64(_raw(audio)[0]), _b64(_raw(visual)[0])
    cases = [
        (
            _columnar(audio_ok, {"b64": "%%%not base64"}),
            "Unable to base64 decode input 'visual_bytes' at index [0]: ",
        ),
        (
            _columnar(_b64(_raw(audio)[0][:-1]), visual_ok),
            "Input 'audio_bytes': every value must hold 5120 bytes",
        ),
        (_columnar(audio_ok, {"b64": "AAAA", "x": 1}), "not formatted correctly for base64 data"),
        (_columnar(audio_ok, 3), "Type: Number is not of expected type: string"),
        (
            json.dumps(
                {"signature_name": BYTES, "instances": [{"audio_bytes": audio_ok,
                                                         "visual_bytes": {"b64": "A"}}]}
            ).encode(),
            "Failed to process element: 0 key: visual_bytes of 'instances' list. Error: "
            "INVALID_ARGUMENT: Unable to base64 decode input 'visual_bytes' at index []",
        ),
    ]  # fmt: skip
    for body, message in cases:
        status, answer = http_call(server.port, "POST", PREDICT, body)
        assert status == 400, answer
        assert message in answer["error"]
    assert_healthy(server)


def test_string_array_reads_strings_like_tf_serving():
    value = [[{"b64": base64.b64encode(b"\x00\x01\xff").decode()}, "é"], [{"b64": "AAE"}, ""]]
    array = string_array(value, TensorSpec((None, 2), np.dtype(object), "string"), "x_bytes")
    assert array.shape == (2, 2) and array.dtype == object
    assert array.tolist() == [[b"\x00\x01\xff", "é".encode()], [b"\x00\x01", b""]]
    with pytest.raises(RestError, match="Encountered list at unexpected size: 1 at level: 1"):
        string_array([["a", "b"], ["c"]], STRING_SPEC, "x_bytes")
    with pytest.raises(RestError, match="Encountered list at unexpected level: 1 expected < 1"):
        string_array(["a", ["b"]], STRING_SPEC, "x_bytes")
    with pytest.raises(RestError, match=r"found at incorrect level: 2 .* Expected at level: 2"):
        string_array([["a"], "b"], STRING_SPEC, "x_bytes")
    with pytest.raises(RestError, match="Type: Null is not of expected type: string"):
        string_array([None], STRING_SPEC, "x_bytes")
    with pytest.raises(RestError, match=r"decode input 'x_bytes' at index \[1\]"):
        string_array(["a", {"b64": "ab$="}], STRING_SPEC, "x_bytes")
    # The float path is untouched by string inputs.
    float_spec = TensorSpec((None, 2), np.dtype(np.float32))
    assert rest_api.to_array([[1, 2.5]], float_spec).dtype == np.float32


def test_binary_inputs_encode_little_endian_float32():
    audio = np.arange(2 * 10 * 128, dtype=">f8").reshape(2, 10, 128)  # big-endian doubles in
    encoded = binary_inputs({"audio": audio})
    assert list(encoded) == ["audio_bytes"] and encoded["audio_bytes"].shape == (2,)
    raw = base64.b64decode(encoded["audio_bytes"][1]["b64"])
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(10, 128), audio[1])


def test_predict_command_binary_equals_json(server, loaded_v1, tmp_path, capsys):
    audio, visual = random_videos(2, seed=35)
    path = tmp_path / "videos.npz"
    np.savez(path, audio=audio, visual=visual, video_id=np.array(["a", "b"]))
    out = tmp_path / "predictions.json"
    argv = ["--server", server.url, "--binary", "--json_output", str(out), str(path)]
    code, printed = _run_predict(argv, capsys)
    assert code == 0, printed.err
    reports = json.loads(out.read_text())
    assert [r["timeline"] for r in reports] == _expected_timelines(loaded_v1, audio, visual)


def test_warmup_requests_cover_both_signatures_and_run(export_dir, loaded_v1):
    requests = export.read_warmup_requests(export_dir / MODEL_NAME / "1")
    assert [signature for signature, _ in requests] == ["serving_default", BYTES]
    for signature, arrays in requests:
        want = export.warmup_inputs()[signature]
        assert sorted(arrays) == sorted(want)
        for name, value in want.items():
            np.testing.assert_array_equal(arrays[name], value, name)
        assert loaded_v1.predict(signature, arrays)["segment_classes"].shape == (1, 10)


def _export_without_bytes_signature(root, model):
    """A version written as exports were before `predict_bytes` existed."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=export.serving_function(model),
        input_signature=export.serving_inputs(),
    )
    path = root / MODEL_NAME / "1"
    archive.write_out(str(path), verbose=False)
    return path


def test_older_export_without_predict_bytes_still_serves(tmp_path):
    model = stand_in_model(seed=3)
    path = _export_without_bytes_signature(tmp_path, model)
    assert _xla_functions(path) == 0
    assert export.read_warmup_requests(path) == []
    loaded = load_version(path, 1)
    assert sorted(loaded.inputs) == ["serving_default"]
    repository = ModelRepository(MODEL_NAME, path.parent, poll_seconds=0)
    repository.refresh()
    with serving_in_thread(ModelServer(("127.0.0.1", 0), repository)) as server:
        audio, visual = random_videos(1, seed=36)
        outputs = ServingClient(server.url, MODEL_NAME).predict_outputs(audio, visual)
        assert outputs["segment_probabilities"].shape == (1, ave.NUM_SEGMENTS, ave.NUM_CLASSES)
        with pytest.raises(BadRequestError, match='"predict_bytes" not found'):
            ServingClient(server.url, MODEL_NAME, binary=True).predict_outputs(audio, visual)


def _xla_functions(path) -> int:
    """How many functions of the SavedModel at `path` carry `_XlaMustCompile = true`."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library
    return sum(
        1
        for function in library.function
        if "_XlaMustCompile" in function.attr and function.attr["_XlaMustCompile"].b
    )


def test_xla_export_equals_the_keras_model(tmp_path):
    model = stand_in_model(seed=4)
    compiled = export.export_saved_model(model, tmp_path, "xla", jit_compile=True)
    assert _xla_functions(compiled) >= 1
    loaded = load_version(compiled, 1)
    plain = export.serving_function(model)
    for batch in (1, 2):  # 1: the XLA-compiled path; 2: the plain graph
        audio, visual = random_videos(batch, seed=37)
        want = {k: v.numpy() for k, v in plain(tf.constant(audio), tf.constant(visual)).items()}
        arrays = {"audio": audio, "visual": visual}
        _assert_same_outputs(loaded.predict("serving_default", arrays), want)
        binary = {k + "_bytes": np.array(_raw(v), dtype=object) for k, v in arrays.items()}
        _assert_same_outputs(loaded.predict(BYTES, binary), want)
