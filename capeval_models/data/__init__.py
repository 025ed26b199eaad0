"""Captioning data for capeval_models: the embedded offline shapes dataset and loaders for real formats.

>>> from capeval_models.data import load_embedded
>>> splits = load_embedded()               # {"train", "val", "nice"}, cached after the first call
>>> batch = splits["train"].sample_minibatch(64, rng=0)

See docs/data.md.
"""

from .embedded import DEFAULT_SIZES, SPLIT_NAMES, default_cache_dir, load_embedded
from .errors import DataFormatError
from .features import extract_features
from .loaders import (
    FeatureTable,
    load_coco_annotations,
    load_cs231n_coco,
    load_karpathy,
    load_nice,
    read_features,
    read_nice_csv,
    write_nice_submission,
)
from .shapes import WITHHELD
from .splits import CaptionSplit, encode_references
from .vocab import (
    END,
    END_ID,
    MAX_WORDS,
    NULL,
    NULL_ID,
    SPECIAL_TOKENS,
    START,
    START_ID,
    UNK,
    UNK_ID,
    Vocabulary,
    simple_split,
    tokenize_captions,
)

__all__ = [
    "CaptionSplit",
    "DataFormatError",
    "DEFAULT_SIZES",
    "END",
    "END_ID",
    "FeatureTable",
    "MAX_WORDS",
    "NULL",
    "NULL_ID",
    "SPECIAL_TOKENS",
    "SPLIT_NAMES",
    "START",
    "START_ID",
    "UNK",
    "UNK_ID",
    "Vocabulary",
    "WITHHELD",
    "default_cache_dir",
    "encode_references",
    "extract_features",
    "load_coco_annotations",
    "load_cs231n_coco",
    "load_embedded",
    "load_karpathy",
    "load_nice",
    "read_features",
    "read_nice_csv",
    "simple_split",
    "tokenize_captions",
    "write_nice_submission",
]
