"""Custom Keras layers of PSP."""

from ave_tf.layers.audio_guided_visual_attention import AudioGuidedVisualAttention
from ave_tf.layers.positive_sample_propagation import PositiveSamplePropagation
from ave_tf.layers.segment_cosine_similarity import SegmentCosineSimilarity
from ave_tf.layers.segment_self_attention import SegmentSelfAttention
from ave_tf.layers.symmetric_self_attention import SymmetricSelfAttention
from ave_tf.layers.weighting_branch import WeightingBranch

__all__ = [
    "AudioGuidedVisualAttention",
    "PositiveSamplePropagation",
    "SegmentCosineSimilarity",
    "SegmentSelfAttention",
    "SymmetricSelfAttention",
    "WeightingBranch",
]
