"""The embedded captioning task: images of one to three coloured shapes and a varied caption grammar.

Everything is drawn with numpy from a seeded ``np.random.Generator``, so the same seed gives the same bytes.

A scene holds one to three objects, each with a colour (6), a shape (5), a size (small / large) and a cell of
a 3x3 grid (its position, with a little jitter). Each image gets five distinct reference captions drawn from
a grammar with synonyms (square/box, large/big, ...), several sentence patterns, spatial relations
("left of", "above" ...), counts ("two shapes", "two red squares") and occasional article and word-order
variation.

The ``nice`` split (zero-shot, after the NICE challenge) differs from ``train``/``val`` in two ways:

* every nice image holds at least one colour-shape pair from :data:`WITHHELD`, pairs that never occur in a
  train or val image or caption (each withheld pair is a seen colour and a seen shape);
* most nice references (:data:`NICE_STYLE_RATE`) use phrasings that the train grammar never produces
  ("there is ... in the picture", "a picture showing ...", "a circle that is red", "next to", "to its left").
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

import numpy as np

GENERATOR_VERSION = 1

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
COLOUR_RGB = np.array(
    [
        (215, 35, 35),  # red
        (35, 160, 55),  # green
        (40, 75, 215),  # blue
        (240, 210, 30),  # yellow
        (140, 55, 185),  # purple
        (245, 135, 25),  # orange
    ],
    dtype=np.int16,
)
SHAPES = ("square", "circle", "triangle", "diamond", "cross")
SIZES = ("small", "large")

#: colour-shape pairs that appear only in the ``nice`` split (one per shape, five different colours).
WITHHELD = (
    ("red", "circle"),
    ("green", "triangle"),
    ("blue", "square"),
    ("yellow", "cross"),
    ("purple", "diamond"),
)
WITHHELD_IDS = frozenset((COLOURS.index(c), SHAPES.index(s)) for c, s in WITHHELD)

#: share of nice references written in the nice-only style (the rest use the train grammar).
NICE_STYLE_RATE = 0.8
NUM_REFS = 5
MAX_CAPTION_WORDS = 16
GRID = 3  # objects sit in the cells of a GRID x GRID layout

# ------------------------------------------------------------------------------------------- lexicon
# (word, weight) lists; a word may be several tokens ("plus sign").
COLOUR_WORDS = {
    "red": [("red", 1.0)],
    "green": [("green", 1.0)],
    "blue": [("blue", 1.0)],
    "yellow": [("yellow", 1.0)],
    "purple": [("purple", 0.85), ("violet", 0.15)],
    "orange": [("orange", 1.0)],
}
SHAPE_WORDS = {  # (singular, plural), weight
    "square": [(("square", "squares"), 0.7), (("box", "boxes"), 0.3)],
    "circle": [(("circle", "circles"), 0.75), (("disk", "disks"), 0.25)],
    "triangle": [(("triangle", "triangles"), 1.0)],
    "diamond": [(("diamond", "diamonds"), 0.85), (("rhombus", "rhombuses"), 0.15)],
    "cross": [(("cross", "crosses"), 0.7), (("plus sign", "plus signs"), 0.3)],
}
SIZE_WORDS = {
    "small": [("small", 0.6), ("little", 0.25), ("tiny", 0.15)],
    "large": [("large", 0.55), ("big", 0.45)],
}
_H = ("left", "center", "right")
_V = ("top", "middle", "bottom")
POSITION_WORDS = {
    (1, 1): [("in the center", 0.5), ("in the middle", 0.35), ("in the centre", 0.15)],
    (1, 0): [("on the left", 0.6), ("on the left side", 0.25), ("at the left", 0.15)],
    (1, 2): [("on the right", 0.6), ("on the right side", 0.25), ("at the right", 0.15)],
    (0, 1): [("at the top", 0.6), ("near the top", 0.25), ("at the top center", 0.15)],
    (2, 1): [("at the bottom", 0.6), ("near the bottom", 0.25), ("at the bottom center", 0.15)],
}
for _r, _v in ((0, "top"), (2, "bottom")):
    for _c, _h in ((0, "left"), (2, "right")):
        _u = "upper" if _r == 0 else "lower"
        POSITION_WORDS[(_r, _c)] = [
            (f"in the {_v} {_h}", 0.4),
            (f"in the {_v} {_h} corner", 0.3),
            (f"in the {_u} {_h}", 0.15),
            (f"at the {_v} {_h}", 0.15),
        ]
RELATION_WORDS = {
    "left": [("left of", 0.35), ("to the left of", 0.5), ("on the left of", 0.15)],
    "right": [("right of", 0.35), ("to the right of", 0.5), ("on the right of", 0.15)],
    "above": [("above", 0.8), ("over", 0.2)],
    "below": [("below", 0.65), ("under", 0.25), ("beneath", 0.1)],
}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


@dataclass(frozen=True)
class Obj:
    colour: int
    shape: int
    size: int  # 0 small, 1 large
    row: int
    col: int
    cx: float
    cy: float
    radius: float

    @property
    def names(self) -> tuple[str, str, str]:
        return COLOURS[self.colour], SHAPES[self.shape], SIZES[self.size]


# ------------------------------------------------------------------------------------------- scenes
def sample_scene(rng: np.random.Generator, zero_shot: bool, image_size: int = 64) -> list[Obj]:
    """One to three objects in distinct grid cells; ``zero_shot`` forces a withheld pair, else forbids them."""
    n = int(rng.choice(3, p=(0.3, 0.4, 0.3))) + 1
    cells = rng.choice(GRID * GRID, size=n, replace=False)
    cell = image_size / GRID
    objs = []
    for k in range(n):
        if zero_shot and k == 0:
            colour, shape = sorted(WITHHELD_IDS)[int(rng.integers(len(WITHHELD_IDS)))]
        else:
            while True:
                colour, shape = int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES)))
                if zero_shot or (colour, shape) not in WITHHELD_IDS:
                    break
        size = int(rng.integers(2))
        r_lo, r_hi = (0.07, 0.095) if size == 0 else (0.13, 0.15)
        radius = float(rng.uniform(r_lo, r_hi)) * image_size
        row, col = divmod(int(cells[k]), GRID)
        jitter = rng.uniform(-1.0, 1.0, size=2) * (0.05 * image_size)
        cx = (col + 0.5) * cell + float(jitter[0])
        cy = (row + 0.5) * cell + float(jitter[1])
        objs.append(Obj(colour, shape, size, row, col, cx, cy, radius))
    if zero_shot:  # the withheld object need not come first in the image
        perm = rng.permutation(n)
        objs = [objs[i] for i in perm]
    return objs


def shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    name = SHAPES[shape]
    if name == "square":
        h = 0.85 * r
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if name == "circle":
        return dx * dx + dy * dy <= r * r
    if name == "triangle":  # apex up, base at +0.8 r
        return (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) * (1.05 / 1.8))
    if name == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if name == "cross":
        a, b = np.abs(dx), np.abs(dy)
        return ((a <= r) & (b <= 0.33 * r)) | ((b <= r) & (a <= 0.33 * r))
    raise ValueError(name)


@functools.lru_cache(maxsize=4)
def _pixel_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    return yy, xx


def render(objs: list[Obj], rng: np.random.Generator, image_size: int = 64) -> np.ndarray:
    """Draw a scene as an (H, W, 3) uint8 image on a plain grey background."""
    grey = int(rng.integers(100, 151))
    img = np.full((image_size, image_size, 3), grey, dtype=np.int16)
    yy, xx = _pixel_grid(image_size)
    for o in objs:
        colour = COLOUR_RGB[o.colour] + rng.integers(-10, 11, size=3)
        mask = shape_mask(o.shape, xx - o.cx, yy - o.cy, o.radius)
        img[mask] = colour
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- grammar
_CUM: dict[int, tuple[list, list[float]]] = {}


def _pick(rng: np.random.Generator, options):
    """Weighted choice among (value, weight) pairs (one uniform draw)."""
    key = id(options)
    hit = _CUM.get(key)
    if hit is None or hit[0] is not options:
        cum, tot = [], 0.0
        for _, w in options:
            tot += w
            cum.append(tot)
        hit = _CUM[key] = (options, [c / tot for c in cum])
    k = bisect.bisect_right(hit[1], rng.random())
    return options[min(k, len(options) - 1)][0]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class CaptionWriter:
    """Writes captions for a scene; ``style="train"`` or ``"nice"`` (see module docstring)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    # -- pieces
    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def colour(self, o: Obj) -> str:
        return _pick(self.rng, COLOUR_WORDS[COLOURS[o.colour]])

    def shape(self, o: Obj, plural: bool = False) -> str:
        return _pick(self.rng, SHAPE_WORDS[SHAPES[o.shape]])[1 if plural else 0]

    def size(self, o: Obj) -> str:
        return _pick(self.rng, SIZE_WORDS[SIZES[o.size]])

    def position(self, o: Obj) -> str:
        return _pick(self.rng, POSITION_WORDS[(o.row, o.col)])

    def relation(self, a: Obj, b: Obj) -> tuple[str, str]:
        """Where ``a`` is relative to ``b``: ("left" | "right" | "above" | "below", phrase)."""
        horiz = a.col != b.col and (a.row == b.row or self.p(0.5))
        if horiz:
            key = "left" if a.col < b.col else "right"
        else:
            key = "above" if a.row < b.row else "below"
        return key, _pick(self.rng, RELATION_WORDS[key])

    def np_(self, o: Obj, article: bool = True, size_p: float = 0.55, colour_p: float = 0.95) -> str:
        """Noun phrase, train word order: [article] [size] [colour] shape (with rare variations)."""
        words = []
        size = self.size(o) if self.p(size_p) else None
        colour = self.colour(o) if self.p(colour_p) else None
        if size and colour and self.p(0.04):  # occasional word-order slip: "a red small square"
            words += [colour, size]
        else:
            words += [w for w in (size, colour) if w]
        words.append(self.shape(o))
        phrase = " ".join(words)
        if not article:
            return phrase
        u = self.rng.random()
        if u < 0.05:  # dropped article
            return phrase
        if u < 0.09:
            return "the " + phrase
        return f"{_article(phrase)} {phrase}"

    def np_nice(self, o: Obj) -> str:
        """Noun phrase in nice style: mostly inverted attribute order."""
        shape = self.shape(o)
        colour = self.colour(o)
        size = self.size(o) if self.p(0.5) else None
        u = self.rng.random()
        head = f"{size} {shape}" if size else shape
        if u < 0.3:
            return f"{_article(head)} {head} that is {colour}"
        if u < 0.5:
            return f"{_article(head)} {head} colored {colour}"
        if u < 0.6:
            return f"{_article(head)} {head} in {colour}"
        if u < 0.7:
            phrase = f"{colour} colored {shape}"
            return f"{_article(phrase)} {phrase}"
        return self.np_(o, size_p=0.5, colour_p=1.0)

    @staticmethod
    def order(rng: np.random.Generator, objs: list[Obj]) -> list[Obj]:
        u = rng.random()
        if u < 0.6:  # reading order
            return sorted(objs, key=lambda o: (o.row, o.col))
        if u < 0.8:  # large first
            return sorted(objs, key=lambda o: (-o.size, o.row, o.col))
        return [objs[i] for i in rng.permutation(len(objs))]

    def group_phrase(self, objs: list[Obj]) -> str | None:
        """Counted phrases for shapes that repeat: "two red squares", "two boxes , one red and one blue"."""
        by_shape: dict[int, list[Obj]] = {}
        for o in objs:
            by_shape.setdefault(o.shape, []).append(o)
        groups = [g for g in by_shape.values() if len(g) >= 2]
        if not groups:
            return None
        g = groups[0]
        rest = [o for o in objs if o not in g]
        num = NUMBER_WORDS[len(g)]
        colours = {o.colour for o in g}
        plural = self.shape(g[0], plural=True)
        if len(colours) == 1:
            head = f"{num} {self.colour(g[0])} {plural}"
        elif len(g) == 2 and self.p(0.6):
            head = f"{num} {plural} , one {self.colour(g[0])} and one {self.colour(g[1])}"
        else:
            head = f"{num} {plural}"
        if rest:
            return f"{head} and {self.np_(rest[0])}"
        return head

    # -- whole captions
    def train_caption(self, objs: list[Obj]) -> str:
        rng = self.rng
        objs = self.order(rng, objs)
        n = len(objs)
        if n == 1:
            (a,) = objs
            u = rng.random()
            if u < 0.2:
                return self.np_(a)
            if u < 0.6:
                return f"{self.np_(a)} {self.position(a)}"
            if u < 0.7:
                return f"{self.np_(a)} on a {_pick(rng, [('grey', 0.5), ('gray', 0.5)])} background"
            if u < 0.8:
                pos = f" {self.position(a)}" if self.p(0.5) else ""
                return f"an image of {self.np_(a)}{pos}"
            if u < 0.9:
                return f"{_pick(rng, [('a single', 0.6), ('one', 0.4)])} {self.np_(a, article=False)}"
            return f"{self.position(a)} , {self.np_(a)}"
        u = rng.random()
        if u < 0.15:
            grouped = self.group_phrase(objs)
            if grouped:
                return grouped
        if n == 2:
            a, b = objs
            u = rng.random()
            if u < 0.3:
                return f"{self.np_(a)} and {self.np_(b)}"
            if u < 0.65:
                return f"{self.np_(a)} {self.relation(a, b)[1]} {self.np_(b)}"
            if u < 0.8:
                count = _pick(rng, [("two shapes", 0.6), ("two objects", 0.4)])
                return f"{count} , {self.np_(a)} and {self.np_(b)}"
            return f"{self.np_(a, size_p=0.3)} {self.position(a)} and {self.np_(b, size_p=0.3)} {self.position(b)}"
        a, b, c = objs
        u = rng.random()
        if u < 0.35:
            return f"{self.np_(a)} , {self.np_(b)} and {self.np_(c)}"
        if u < 0.55:
            count = _pick(rng, [("three shapes", 0.6), ("three objects", 0.4)])
            return f"{count} , {self.np_(a, size_p=0.3)} , {self.np_(b, size_p=0.3)} and {self.np_(c, size_p=0.3)}"
        if u < 0.8:
            return f"{self.np_(a)} {self.relation(a, b)[1]} {self.np_(b)} and {self.np_(c, size_p=0.2)}"
        return f"{self.np_(a)} {self.relation(a, b)[1]} {self.np_(b)}"

    def nice_caption(self, objs: list[Obj]) -> str:
        rng = self.rng
        objs = self.order(rng, objs)
        n = len(objs)
        NP = self.np_nice
        if n == 1:
            (a,) = objs
            u = rng.random()
            if u < 0.3:
                pos = f" {self.position(a)}" if self.p(0.4) else ""
                return f"there is {NP(a)}{pos} in the picture"
            if u < 0.55:
                pos = f" {self.position(a)}" if self.p(0.4) else ""
                return f"a picture showing {NP(a)}{pos}"
            if u < 0.75:
                return f"{self.position(a)} of the picture there is {NP(a)}"
            if u < 0.9:
                return f"the picture shows {NP(a)}"
            return NP(a)
        if n == 2:
            a, b = objs
            u = rng.random()
            if u < 0.25:
                return f"there are two shapes in the picture , {NP(a)} and {NP(b)}"
            if u < 0.5:
                return f"a picture showing {NP(a)} next to {NP(b)}"
            if u < 0.75:
                key, _ = self.relation(a, b)
                where = {
                    "left": "to its left",
                    "right": "to its right",
                    "above": "above it",
                    "below": "below it",
                }
                return f"{NP(b)} with {NP(a)} {where[key]}"
            return f"we can see {NP(a)} and {NP(b)}"
        a, b, c = objs
        u = rng.random()
        if u < 0.35:
            return f"a picture showing {NP(a)} , {NP(b)} and {NP(c)}"
        if u < 0.6:
            return f"we can see {NP(a)} , {NP(b)} and {NP(c)}"
        if u < 0.8:
            return f"there are three shapes in the picture , {NP(a)} among them"
        return f"{NP(a)} next to {NP(b)} and {NP(c)}"

    def references(self, objs: list[Obj], nice: bool, k: int = NUM_REFS) -> list[str]:
        """``k`` distinct captions of at most MAX_CAPTION_WORDS words."""
        out: list[str] = []
        seen: set[str] = set()
        for _ in range(200 * k):
            style_nice = nice and self.p(NICE_STYLE_RATE)
            cap = self.nice_caption(objs) if style_nice else self.train_caption(objs)
            words = cap.replace(" , ", " ").split()
            if len(words) > MAX_CAPTION_WORDS or cap in seen:
                continue
            seen.add(cap)
            out.append(cap)
            if len(out) == k:
                return out
        raise RuntimeError(f"could not write {k} distinct captions for {objs}")  # pragma: no cover


# ------------------------------------------------------------------------------------------- splits
@dataclass
class ShapesSplit:
    images: np.ndarray  # (N, H, W, 3) uint8
    scenes: list[list[Obj]]
    references: list[list[str]]


def scene_array(scenes: list[list[Obj]]) -> tuple[np.ndarray, np.ndarray]:
    """Pack scenes as int (N, 3, 5) [colour, shape, size, row, col] (-1 padded) and float (N, 3, 3) geometry."""
    ints = np.full((len(scenes), 3, 5), -1, dtype=np.int16)
    geo = np.zeros((len(scenes), 3, 3), dtype=np.float32)
    for i, objs in enumerate(scenes):
        for k, o in enumerate(objs):
            ints[i, k] = (o.colour, o.shape, o.size, o.row, o.col)
            geo[i, k] = (o.cx, o.cy, o.radius)
    return ints, geo


def scenes_from_array(ints: np.ndarray, geo: np.ndarray) -> list[list[Obj]]:
    scenes = []
    for row_i, row_g in zip(ints, geo):
        scenes.append(
            [
                Obj(int(c), int(s), int(z), int(r), int(q), float(x), float(y), float(rad))
                for (c, s, z, r, q), (x, y, rad) in zip(row_i.tolist(), row_g.tolist())
                if c >= 0
            ]
        )
    return scenes


def generate_split(
    n: int, seed: int, split_index: int, zero_shot: bool, image_size: int = 64, progress: bool = False
) -> ShapesSplit:
    """Images, scenes and five references per image; the first k images do not depend on ``n``."""
    scene_rng = np.random.default_rng([seed, split_index, 0])
    draw_rng = np.random.default_rng([seed, split_index, 1])
    text_rng = np.random.default_rng([seed, split_index, 2])
    writer = CaptionWriter(text_rng)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    scenes, refs = [], []
    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"shapes split {split_index}", leave=False)
    for i in it:
        objs = sample_scene(scene_rng, zero_shot, image_size)
        images[i] = render(objs, draw_rng, image_size)
        scenes.append(objs)
        refs.append(writer.references(objs, nice=zero_shot))
    return ShapesSplit(images, scenes, refs)
