"""Small generated video files shared by the extraction tests (written once per session)."""

import pytest

from ave_tf.testing.clips import write_test_clips


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """name -> path: 64x48 H.264 (libx264, else mpeg4) + AAC files of known content."""
    return write_test_clips(tmp_path_factory.mktemp("clips"))
