"""The AVE dataset as TFDS: ``tfds build tfds_ave --config=<config>``, one of ``synthetic``,
``synthetic_full``, ``features``, ``videos`` and ``clips``.

Importing this package registers the builder ``tfds_ave`` so that ``tfds.builder("tfds_ave")``
and ``tfds.load("tfds_ave/synthetic")`` work.
"""

from tfds_ave.tfds_ave_dataset_builder import Builder

__all__ = ["Builder"]
