"""Shared fixtures of the serving tests: one exported PSP model and one running local server.

Exporting a SavedModel and loading it take seconds each on 2 cores, so the session shares one
export (a freshly initialised `fully_supervised_model()`, seeded) and one server.
"""

import contextlib

import keras
import pytest
from serving_helpers import MODEL_NAME, TEST_MAX_BODY_BYTES, serving_in_thread

from ave_tf.export import export_saved_model
from ave_tf.models import fully_supervised_model
from tfserving_standin.repository import ModelRepository, load_version
from tfserving_standin.server import Limits, ModelServer


@pytest.fixture(scope="session")
def keras_model():
    keras.utils.set_random_seed(1)
    return fully_supervised_model()


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, keras_model):
    """`<tmp>/saved_models` holding psp_fully version 1 (the session's Keras model)."""
    root = tmp_path_factory.mktemp("exports") / "saved_models"
    export_saved_model(keras_model, root, MODEL_NAME)
    return root


@pytest.fixture(scope="session")
def loaded_v1(export_dir):
    """Version 1 loaded in-process with `tf.saved_model.load`."""
    return load_version(export_dir / MODEL_NAME / "1", 1)


@pytest.fixture(scope="session")
def server(export_dir, loaded_v1):
    """A local server on 127.0.0.1 (free port) serving the session's export."""
    repository = ModelRepository(MODEL_NAME, export_dir / MODEL_NAME, poll_seconds=0)
    repository.refresh()
    server = ModelServer(("127.0.0.1", 0), repository, max_body_bytes=TEST_MAX_BODY_BYTES)
    with serving_in_thread(server):
        yield server


@pytest.fixture(scope="session")
def grpc_server(server):
    """A gRPC server on 127.0.0.1 (free port) sharing the REST server's repository."""
    from tfserving_standin.grpc_server import GrpcModelServer

    grpc_server = GrpcModelServer(("127.0.0.1", 0), server.repository).start()
    yield grpc_server
    grpc_server.stop(grace=None)


@pytest.fixture
def make_server(server):
    """Starts servers with other `Limits` on the session's repository; stops them after."""
    with contextlib.ExitStack() as started:

        def make(repository=None, **limits):
            other = ModelServer(
                ("127.0.0.1", 0), repository or server.repository, limits=Limits(**limits)
            )
            return started.enter_context(serving_in_thread(other))

        yield make
