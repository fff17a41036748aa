"""ave-tf: Positive Sample Propagation (Zhou et al., CVPR 2021) in Keras 3 / TensorFlow.

Exact tested versions of everything (these and their dependencies) are pinned in
requirements.txt; install with ``pip install -r requirements.txt``.
"""

import setuptools

setuptools.setup(
    name="ave-tf",
    version="0.1.0",
    description="Audio-visual event localization with Positive Sample Propagation (PSP)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(
        include=["ave_tf*", "tfds_ave*", "trainers*", "tfserving_standin*"]
    ),
    include_package_data=True,
    package_data={"tfds_ave": ["README.md", "CITATIONS.bib", "checksums.tsv", "dummy_data/**/*"]},
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-datasets==4.9.10",
        # What the `tfds` command of TFDS 4.9.10 imports.
        "apache-beam==2.77.0",
        "mlcroissant==1.1.1",
        "importlib_resources==7.1.0",
        "numpy>=2,<3",
        "h5py==3.14.0",  # TF 2.21 caps h5py below 3.15
        "absl-py==2.5.1",
        "psutil==7.2.2",
        # Video in, features out: PyAV decodes (FFmpeg inside the wheel); resampy resamples
        # audio to 16 kHz as the official VGGish front end does.
        "av==18.1.0",
        "resampy==0.4.3",
        # Serving: TF Serving's own protos for gRPC (PredictionService), fast JSON, fast
        # base64 for REST binary values (SIMD: ~40x binascii on 1 MB, BENCHMARKS.md "Serving").
        "tensorflow-serving-api==2.21.0",
        "grpcio==1.85.3",
        "orjson==3.13.0",
        "pybase64==1.5.1",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-xdist==3.8.0",
            "hypothesis==6.170.17",
            "ruff==0.17.6",
            "dill==0.4.1",
        ],
        "viz": ["matplotlib==3.11.2", "scikit-learn==1.9.1"],
    },
)
