"""What a caption says, beyond its score: repeated phrases and named shapes that are not in the image.

Issue 17.4: greedy Transformer captions such as "a yellow circle a large yellow circle and a large red
triangle" score well on CIDEr-D (the n-grams are right) while repeating a phrase and naming a shape that is
not there. Two counts make that visible per system: the share of captions with a repeated word n-gram (the
references' own share is the yardstick: "a red square and a red circle" legitimately repeats "a red"), and
the share of captions naming a shape (the shapes dataset's shape words and synonyms) that none of the
image's references names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

REPEAT_NS = (2, 3)  # "yellow circle" twice is a repeated bigram; "a red" also repeats in good captions, so
# the references' share is printed beside every model's, and trigrams (rarely repeated by references) too


def has_repeated_ngram(caption: str, n: int) -> bool:
    words = caption.split()
    counts = Counter(tuple(words[i: i + n]) for i in range(len(words) - n + 1))
    return any(c > 1 for c in counts.values())


def repeated_ngram_share(captions: Iterable[str], n: int) -> float:
    captions = list(captions)
    return sum(has_repeated_ngram(c, n) for c in captions) / max(1, len(captions))


def _shape_lexicon() -> dict[str, str]:
    """shape word (singular or plural, any synonym) -> canonical shape."""
    from .data.shapes import SHAPE_WORDS

    lexicon = {}
    for shape, variants in SHAPE_WORDS.items():
        for (singular, plural), _weight in variants:
            lexicon[singular.split()[0]] = shape  # "plus sign" counts by "plus"
            lexicon[plural.split()[0]] = shape
    return lexicon


def shapes_named(caption: str, lexicon: Mapping[str, str]) -> set[str]:
    return {lexicon[w] for w in caption.split() if w in lexicon}


def wrong_shape_share(preds: Mapping[str, str], references: Mapping[str, list[str]]) -> float:
    """Share of captions naming a shape that no reference of the image names (shapes dataset only)."""
    lexicon = _shape_lexicon()
    wrong = 0
    for image_id, caption in preds.items():
        seen = set().union(*(shapes_named(r.lower(), lexicon) for r in references[image_id]))
        wrong += bool(shapes_named(caption.lower(), lexicon) - seen)
    return wrong / max(1, len(preds))


def caption_quality(preds: Mapping[str, str], references: Mapping[str, list[str]], shapes: bool) -> dict:
    """{"repeated_2gram": share, "repeated_3gram": share, "wrong_shape": share or None} of one system."""
    out = {f"repeated_{n}gram": repeated_ngram_share(preds.values(), n) for n in REPEAT_NS}
    out["wrong_shape"] = wrong_shape_share(preds, references) if shapes else None
    return out


def reference_quality(references: Mapping[str, list[str]]) -> dict:
    """The references' own repeated n-gram shares (every reference caption counted), the yardstick."""
    from .data.vocab import simple_split

    captions = [simple_split(c) for caps in references.values() for c in caps]  # as the models write them
    return {f"repeated_{n}gram": repeated_ngram_share(captions, n) for n in REPEAT_NS}
