"""Figures of what PSP does (the paper's Fig. 4 and 5): ``python -m ave_tf.visualize``.

One module per figure, each with a pure ``prepare_*`` function (arrays in, the arrays that are
drawn out) and a ``draw_*`` function (those arrays in, a matplotlib figure out):

* ``timeline``: ground truth vs prediction per segment, with names and confidences.
* ``connections``: PSP's beta (before) and gamma (after thresholding at tau), both directions.
* ``attention``: the 7x7 AVGA weights of each segment, optionally over the video's frames.
* ``tsne``: t-SNE of the audio and visual features at the input, after the Bi-LSTMs, after PSP.
* ``curves``: loss, accuracy and learning rate from ``results.json``; a confusion matrix.

Matplotlib always runs on the headless Agg backend here.
"""
