"""Per-word attention maps: where the caption decoder looked in the image for each word it generated.

For every generated word, the decoder's cross-attention weights over the image memory (averaged over heads,
last decoder layer unless asked otherwise) are reshaped to the region grid and upsampled over the image. The
figure shows the plain image first, then one panel per word, titled with the word: the image itself, darkened
where the word did not attend (an alpha mask: the attended objects keep their true colours, so a reader can
check a colour word against the picture), a contour at half the word's largest weight, and one colour bar for
every panel. Saved as a PNG (written atomically).

With a global memory (one token per image) every word attends to that single token with weight 1.0: the maps
carry no information, and the figure says so in its title.

Uses matplotlib's Agg canvas directly (no pyplot, no GUI backend, no global backend switch).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from capeval._io import atomic_write_bytes

GLOBAL_MEMORY_NOTE = ("one global memory token: every word attends to it with weight 1.0, "
                      "so these maps are trivial (use region features for spatial attention)")


def _grid_shape(n_tokens: int, grid_shape) -> tuple[int, int]:
    if grid_shape is not None:
        gh, gw = int(grid_shape[0]), int(grid_shape[1])
        if gh * gw != n_tokens:
            raise ValueError(f"grid_shape {(gh, gw)} has {gh * gw} cells but the memory has {n_tokens} tokens")
        return gh, gw
    side = math.isqrt(n_tokens)
    if side * side != n_tokens:
        raise ValueError(f"{n_tokens} memory tokens do not form a square grid; pass grid_shape")
    return side, side


def upsample(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a (gh, gw) grid to (height, width), cell centres at pixel centres."""
    gh, gw = heat.shape
    ys = np.clip((np.arange(height) + 0.5) * gh / height - 0.5, 0, gh - 1)
    xs = np.clip((np.arange(width) + 0.5) * gw / width - 0.5, 0, gw - 1)
    rows = np.stack([np.interp(xs, np.arange(gw), r) for r in heat])  # (gh, width)
    return np.stack([np.interp(ys, np.arange(gh), c) for c in rows.T], axis=1)  # (height, width)


def _dimming_colormap():
    """Attention 0 -> black at 75% opacity, the largest weight -> fully transparent: attended pixels keep
    their own colours (no hue is blended in, a red diamond stays red), the rest is darkened."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("dim", [(0, 0, 0, 0.75), (0, 0, 0, 0.0)])


def attention_figure(words, weights, *, image=None, grid_shape=None, title: str | None = None,
                     ncols: int = 5) -> Figure:
    """The plain image, then one panel per word. weights (L, S): attention of word l over the S memory
    tokens. With an image (H, W, 3) uint8 the image is drawn unchanged and darkened where the word did not
    look (an alpha mask, so object colours stay recognisable), with a contour at half the word's largest
    weight; without one the weights are drawn alone on the region grid. One scale for all panels (0 to the
    largest weight) and a colour bar, so panels compare."""
    weights = np.asarray(weights, dtype=np.float64)
    words = [str(w) for w in words]
    if weights.ndim != 2 or weights.shape[0] != len(words):
        raise ValueError(f"weights must be (len(words), S) = ({len(words)}, S), got {weights.shape}")
    L, S = weights.shape
    gh, gw = _grid_shape(S, grid_shape)
    vmax = max(float(weights.max()) if weights.size else 1.0, 1e-12)
    panels = L + (image is not None)
    ncols = max(1, min(ncols, panels))
    nrows = max(1, math.ceil(panels / ncols))
    fig = Figure(figsize=(2.3 * ncols + 0.9, 2.3 * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    img = None if image is None else np.asarray(image)
    first = 1
    if img is not None:
        ax = fig.add_subplot(nrows, ncols, 1)
        ax.imshow(img)
        ax.set_title("image", fontsize=11, style="italic")
        ax.set_xticks([])
        ax.set_yticks([])
        first = 2
    mappable = None
    for i, (word, row) in enumerate(zip(words, weights)):
        ax = fig.add_subplot(nrows, ncols, i + first)
        heat = row.reshape(gh, gw)
        if img is not None:
            H, W = img.shape[:2]
            ax.imshow(img)
            smooth = upsample(heat, H, W) if S > 1 else np.full((H, W), heat[0, 0])
            mappable = ax.imshow(smooth, cmap=_dimming_colormap(), vmin=0.0, vmax=vmax)
            if S > 1 and np.ptp(smooth) > 0:
                ax.contour(smooth, levels=[0.5 * float(row.max())], colors="white", linewidths=1.2)
        else:
            mappable = ax.imshow(heat, cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(word, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=fig.get_axes(), shrink=0.8, pad=0.02)
        bar.set_label("attention weight" + (" (dark: not attended)" if img is not None else ""), fontsize=8)
    heading = title or ""
    if S == 1:
        heading = f"{heading}\n{GLOBAL_MEMORY_NOTE}" if heading else GLOBAL_MEMORY_NOTE
    if heading:
        fig.suptitle(heading, fontsize=10)
    return fig


def save_figure(fig: Figure, path, dpi: int = 100) -> Path:
    """Render to PNG in memory, then write atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def plot_attention_maps(words, weights, path, **kwargs) -> Path:
    """attention_figure(words, weights, **kwargs) saved as a PNG at `path`."""
    return save_figure(attention_figure(words, weights, **kwargs), path)


def caption_attention_maps(model, image_input, path=None, *, vocab=None, image=None, grid_shape=None,
                           layer: int = -1, beam_size: int = 1, include_end: bool = False,
                           title: str | None = None) -> dict:
    """Caption one image with `model` (greedy, or beam search when beam_size > 1), then draw the per-word
    cross-attention of decoder layer `layer` (default the last) over `image`.

    image_input: the model's input for this image, (D,) global features or (R, Dr) region features (a
    leading batch axis of 1 is accepted). Returns {"caption", "words", "weights" (L, S), "path"}; the PNG is
    written only when `path` is given.
    """
    import torch

    from .transformer import END, beam_search, greedy_decode, word_attention

    x = torch.as_tensor(np.asarray(image_input) if not torch.is_tensor(image_input) else image_input,
                        dtype=torch.float32)
    per_example = 1 if model.config.memory == "global" else 2
    if x.dim() == per_example:
        x = x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"expected the input of one image, got a batch of {x.shape[0]}")
    if beam_size > 1:
        decoded = beam_search(model, x, beam_size=beam_size, vocab=vocab)
    else:
        decoded = greedy_decode(model, x, vocab=vocab)
    ids = decoded.ids[0].tolist()
    n_words = ids.index(END) if END in ids else len(ids)
    n = min(len(ids), n_words + 1) if include_end else n_words
    weights = word_attention(model, x, decoded.ids[:1], layer=layer)[0, :n]  # (n, S)
    itow = getattr(vocab, "idx_to_word", vocab)
    words = [str(itow[i]) if itow is not None else str(i) for i in ids[:n]]
    out = {"caption": decoded.texts[0], "words": words, "weights": weights, "path": None}
    if path is not None and n > 0:
        grid = grid_shape if grid_shape is not None else model.config.grid_shape
        layer_name = f"layer {layer % len(model.layers) + 1}/{len(model.layers)}"
        heading = title if title is not None else f'"{decoded.texts[0]}" (cross-attention, {layer_name})'
        out["path"] = plot_attention_maps(words, weights, path, image=image, grid_shape=grid, title=heading)
    return out
