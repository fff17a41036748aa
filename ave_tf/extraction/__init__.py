"""From a video file to AVE features: the recipe of the released 2018 features, as code.

- `decode`: PyAV decoding of the 10 s span ``[start, start + 10)``: RGB frames resized to
  224x224 (bilinear, like ``cv2.resize`` INTER_LINEAR) and the float audio of the same span.
- `log_mel`, `vggish`, `audio`: the VGGish front end (``tf.signal``), the Keras VGGish and the
  audio features ``(10, 128)``: raw ``vggish/embedding`` values (after fc2's ReLU, as in
  the 2018 ``vggish_slim.py``), one per second.
- `vgg19`: the frame sampling (16 frames per second), caffe preprocessing and VGG19
  ``block5_pool``, averaged per second: visual features ``(10, 7, 7, 512)``.
- `extractor`: `FeatureExtractor`, both models loaded once; ``extract(path)`` -> (audio, visual).

Importing this package imports nothing heavy; import the modules you need.
"""

RECIPE_VERSION = 2
"""The version of the extraction recipe, stored with every features file ave-tf extracts
(HDF5 attribute ``recipe_version``). 1: VGGish's fc2 linear, signed audio features (ave-tf's
extraction before versions were stored: files without the attribute); 2: fc2 followed by its
ReLU, as the 2018 ``vggish_slim.py`` that made the released AVE features. A recipe-1 audio
feature through ``max(x, 0)`` is the recipe-2 one; the visual features are the same in both."""
