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
