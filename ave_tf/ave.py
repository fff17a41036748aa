"""Facts of the AVE dataset that every part of ave-tf shares.

AVE (Tian et al., ECCV 2018): 4,143 videos of 10 one-second segments, 28 event categories
plus background. Category ids follow first appearance in the release's ``Annotations.txt``.
"""

NUM_SEGMENTS = 10
"""Segments (seconds) per video: T in the paper."""

AUDIO_DIM = 128
"""VGGish embedding size of one audio segment."""

VISUAL_SHAPE = (7, 7, 512)
"""VGG19 pool5 map of one visual segment: (height, width, channels)."""

CATEGORY_NAMES = (
    "Church bell",
    "Male speech, man speaking",
    "Bark",
    "Fixed-wing aircraft, airplane",
    "Race car, auto racing",
    "Female speech, woman speaking",
    "Helicopter",
    "Violin, fiddle",
    "Flute",
    "Ukulele",
    "Frying (food)",
    "Truck",
    "Shofar",
    "Motorcycle",
    "Acoustic guitar",
    "Train horn",
    "Clock",
    "Banjo",
    "Goat",
    "Baby cry, infant cry",
    "Bus",
    "Chainsaw",
    "Cat",
    "Horse",
    "Toilet flush",
    "Rodents, rats, mice",
    "Accordion",
    "Mandolin",
)
"""The 28 event categories, indexed by category id."""

BACKGROUND = len(CATEGORY_NAMES)
"""Class id of a segment without an audio-visual event (28)."""

CLASS_NAMES = CATEGORY_NAMES + ("background",)
"""The 29 segment classes: the 28 categories, then background."""

NUM_CLASSES = len(CLASS_NAMES)
"""C in the paper: 29."""
