"""Trivial baselines: what a caption model must beat to have learned anything from the image.

``MostFrequentCaption`` predicts, for every image, the training caption that occurs most often (after
lower-casing and collapsing whitespace; ties go to the alphabetically first caption). It never looks at
the image, so any model whose scores do not clear it by a wide margin has learned only the language prior.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["MostFrequentCaption", "most_frequent_caption"]


def _normal(caption: str) -> str:
    return " ".join(str(caption).lower().split())


def most_frequent_caption(references: Mapping[str, Iterable[str]]) -> tuple[str, int]:
    """(caption, count): the most frequent normalised caption among all references of all images."""
    counts = Counter(_normal(c) for caps in references.values() for c in caps if str(c).strip())
    if not counts:
        raise ValueError("no reference captions to count")
    caption, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return caption, int(count)


class MostFrequentCaption:
    """Fit on the training references, then ``predict(image_ids) -> {id: caption}`` (the same caption)."""

    name = "most-frequent-caption"

    def __init__(self, caption: str | None = None, count: int = 0):
        self.caption = caption
        self.count = count

    def fit(self, references: Mapping[str, Iterable[str]]) -> MostFrequentCaption:
        self.caption, self.count = most_frequent_caption(references)
        return self

    def predict(self, image_ids: Iterable[str]) -> dict[str, str]:
        if self.caption is None:
            raise ValueError("call fit() first")
        return {str(i): self.caption for i in image_ids}

    def to_dict(self) -> dict:
        return {"name": self.name, "caption": self.caption, "count": self.count}
