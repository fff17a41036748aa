"""benchmarks/gpu_check.sh exits 0 saying "no GPU" where there is none, at once."""

import os
import pathlib
import shutil
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def run_check(env, cwd):
    # Run from another folder: the script finds the repository itself.
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_no_gpu_as_ci_runs_it(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is installed: run benchmarks/gpu_check.sh itself")
    done = run_check(os.environ.copy(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU"), done.stdout


@pytest.mark.parametrize(
    "nvidia_smi",
    [
        # No driver: nvidia-smi fails (its exit code 9).
        "echo 'NVIDIA-SMI has failed because it could not communicate with the driver'; exit 9",
        # A driver but no device.
        "echo 'No devices found.'; exit 6",
    ],
)
def test_no_gpu_where_nvidia_smi_finds_none(tmp_path, nvidia_smi):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "nvidia-smi"
    stub.write_text(f"#!/bin/sh\n{nvidia_smi}\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = run_check(env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU: nvidia-smi lists none"), done.stdout
    assert not (tmp_path / ".venv").exists()


def test_gpu_listed_but_invisible_to_tensorflow_is_an_error(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "nvidia-smi"
    stub.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CUDA_VISIBLE_DEVICES": "",  # hides any real GPU from TensorFlow
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "GPU 0: NVIDIA H200" in done.stdout
    assert "nvidia-smi lists GPUs but TensorFlow sees none" in done.stderr
    assert "== trainers.fully" not in done.stdout
