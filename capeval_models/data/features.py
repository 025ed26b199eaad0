"""A fixed, deterministic image feature extractor (no training, no downloads).

For each image it computes hand-made statistics on a ``grid`` of regions (default 4x4 on 64x64 images):

* foreground: pixels that differ from the background colour (the median of the image border), as a soft
  mask; its share of the region and its occupancy on a 4x4 sub-grid of the region (size, silhouette);
* colour: hue histograms (12 and 6 bins) weighted by saturation x foreground, the mean foreground RGB and
  two opponent-colour sums;
* shape: 8-bin histograms of edge orientations (gradients of the foreground mask, so they do not depend
  on the colour) over the region and over each of its 2x2 sub-cells;
* position: a one-hot row and column of the region.

Region vectors (80 statistics each) are standardized and sent through a fixed random projection with
orthonormal rows to ``region_dim`` (default 128; lossless). The global vector (default 512-d, like the
CS231n assignment's PCA'd VGG features) concatenates a compact 32-d summary of every region in grid order
(6-bin hue, 8-bin orientation, 4x4 occupancy, 2 opponent colours), so colour, shape, size and position all
survive, standardized and rotated by a fixed random orthogonal matrix. The standardization constants are
measured once per process on a fixed calibration set of embedded-dataset images drawn from a constant seed,
so the output depends only on the input pixels.
"""

from __future__ import annotations

import functools

import numpy as np

FEATURE_VERSION = 1
PROJECTION_SEED = 20240917
CALIBRATION_SEED = 7_777_777
CALIBRATION_SIZE = 384
HUE_BINS = 12
ORI_BINS = 8
COARSE_HUE_BINS = 6
COMPACT_DIM = COARSE_HUE_BINS + ORI_BINS + 16 + 2  # 32 per region, for the global vector


def _cell_hist(
    nz: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    shape: tuple[int, int, int],
    cell_index: np.ndarray,
    n_cells: int,
    nbins: int,
    period: float,
) -> np.ndarray:
    """Soft (linear, circular) histograms per image and cell: (B, n_cells, nbins).

    ``nz`` are flat pixel indices into a (B, H, W) array of ``shape``, ``values``/``weights`` their values
    and weights; ``cell_index`` (H, W) maps each pixel to its cell.
    """
    b, h, w = shape
    pos = values.astype(np.float64) * (nbins / period)
    lo = np.floor(pos)
    frac = pos - lo
    lo = lo.astype(np.int64) % nbins
    hi = (lo + 1) % nbins
    base = ((nz // (h * w)) * n_cells + cell_index.reshape(-1)[nz % (h * w)]) * nbins
    weights = weights.astype(np.float64)
    out = np.bincount(
        np.concatenate([base + lo, base + hi]),
        weights=np.concatenate([weights * (1 - frac), weights * frac]),
        minlength=b * n_cells * nbins,
    )
    return out.reshape(b, n_cells, nbins)


def _block_sum(x: np.ndarray, gh: int, gw: int) -> np.ndarray:
    """Sum (B, H, W, C) over a gh x gw grid of blocks -> (B, gh, gw, C)."""
    b, h, w, c = x.shape
    return x.reshape(b, gh, h // gh, gw, w // gw, c).sum(axis=2).sum(axis=3)


def _subcells(x: np.ndarray, gh: int, gw: int, k: int) -> np.ndarray:
    """(B, k*gh, k*gw, C) cell values -> (B, gh, gw, k*k*C), the k x k sub-cells of each region."""
    b, c = x.shape[0], x.shape[-1]
    return x.reshape(b, gh, k, gw, k, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, gh, gw, k * k * c)


def _raw_descriptors(images: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(B, R, region raw) and (B, global raw) statistics for a batch of uint8 images."""
    b, h, w, _ = images.shape
    gh, gw = grid
    img = images.astype(np.int16)
    border = np.concatenate(
        [img[:, 0, :, :], img[:, -1, :, :], img[:, 1:-1, 0, :], img[:, 1:-1, -1, :]], axis=1
    )
    bg = np.round(np.median(border, axis=1)).astype(np.int16)  # (B, 3) background colour
    d = np.abs(img - bg[:, None, None, :])
    diff = np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])  # (B, H, W)
    fg = np.clip(diff.astype(np.float32) * np.float32(1 / (255 * 0.12)) - np.float32(0.04 / 0.12), 0.0, 1.0)

    # cells: 2x2 per region (orientation, hue), 4x4 per region (occupancy)
    sh, sw = 2 * gh, 2 * gw
    yy, xx = np.mgrid[0:h, 0:w]
    cell8 = (yy // (h // sh)) * sw + xx // (w // sw)
    n8 = sh * sw

    # colour, over the foreground pixels only: hue histogram weighted by saturation x foreground, and the
    # foreground-weighted RGB sums
    fg_flat = fg.reshape(-1)
    nz = np.flatnonzero(fg_flat)
    wfg = fg_flat[nz].astype(np.float64)
    rgb = images.reshape(-1, 3)[nz].astype(np.float64) / 255.0
    rr, gg, bb = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    mx = np.maximum(np.maximum(rr, gg), bb)
    mn = np.minimum(np.minimum(rr, gg), bb)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    hue = np.degrees(np.arctan2(np.sqrt(3.0) * (gg - bb), 2 * rr - gg - bb)) % 360.0
    hue_sub = _cell_hist(nz, hue, sat * wfg, fg.shape, cell8, n8, HUE_BINS, 360.0)
    hue6_sub = _cell_hist(nz, hue, sat * wfg, fg.shape, cell8, n8, COARSE_HUE_BINS, 360.0)
    cell_of = (nz // (h * w)) * n8 + cell8.reshape(-1)[nz % (h * w)]
    rgb_sub = np.stack(
        [np.bincount(cell_of, weights=rgb[:, c] * wfg, minlength=b * n8) for c in range(3)], axis=-1
    )

    # orientation of the foreground mask's edges (colour-independent)
    gy = np.zeros_like(fg)
    gx = np.zeros_like(fg)
    gy[:, 1:-1, :] = (fg[:, 2:, :] - fg[:, :-2, :]) * np.float32(0.5)
    gx[:, :, 1:-1] = (fg[:, :, 2:] - fg[:, :, :-2]) * np.float32(0.5)
    gx, gy = gx.reshape(-1), gy.reshape(-1)
    nz = np.flatnonzero((gx != 0) | (gy != 0))
    ex, ey = gx[nz].astype(np.float64), gy[nz].astype(np.float64)
    mag = np.sqrt(ex * ex + ey * ey)
    theta = np.degrees(np.arctan2(ey, ex)) % 180.0
    ori_sub = _cell_hist(nz, theta, mag, fg.shape, cell8, n8, ORI_BINS, 180.0)

    region_px = (h // gh) * (w // gw)
    sub_px = region_px / 4
    hue_r = _block_sum(hue_sub.reshape(b, sh, sw, HUE_BINS), gh, gw) / region_px
    hue6_r = _block_sum(hue6_sub.reshape(b, sh, sw, COARSE_HUE_BINS), gh, gw) / region_px
    ori_sub = ori_sub.reshape(b, sh, sw, ORI_BINS)
    ori_r = _block_sum(ori_sub, gh, gw) * (4.0 / region_px)
    ori_s = _subcells(ori_sub, gh, gw, 2) * (4.0 / sub_px)
    weighted_rgb = _block_sum(rgb_sub.reshape(b, sh, sw, 3), gh, gw) / region_px  # mean colour x fg share

    occ_cells = _block_sum(fg[..., None], 4 * gh, 4 * gw)  # (B, 4gh, 4gw, 1) foreground sums
    fg_frac = _block_sum(occ_cells, gh, gw) / region_px  # (B, gh, gw, 1)
    occ = _subcells(occ_cells, gh, gw, 4) / (region_px / 16)
    mean_rgb = weighted_rgb / np.maximum(fg_frac, 1e-3)
    mean_rgb = mean_rgb * np.minimum(fg_frac / 0.02, 1.0)  # fades out for (almost) empty regions
    rows = np.broadcast_to(np.eye(gh)[None, :, None, :], (b, gh, gw, gh))
    cols = np.broadcast_to(np.eye(gw)[None, None, :, :], (b, gh, gw, gw))
    region = np.concatenate([fg_frac, occ, hue_r, mean_rgb, ori_r, ori_s, rows, cols], axis=-1)
    region = region.reshape(b, gh * gw, -1)

    opponent = np.stack(
        [
            weighted_rgb[..., 0] - weighted_rgb[..., 1],
            (weighted_rgb[..., 0] + weighted_rgb[..., 1]) / 2 - weighted_rgb[..., 2],
        ],
        axis=-1,
    )
    compact = np.concatenate([hue6_r, ori_r, occ, opponent], axis=-1).reshape(b, gh * gw, COMPACT_DIM)
    return region.astype(np.float64), compact.reshape(b, -1).astype(np.float64)


@functools.lru_cache(maxsize=16)
def _orthogonal(rows: int, cols: int, seed: int) -> np.ndarray:
    """A fixed random matrix with orthonormal rows (rows <= cols) or columns (rows > cols)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))[None, :]
    return (q if rows >= cols else q.T)[:rows, :cols].astype(np.float64)


@functools.lru_cache(maxsize=8)
def _calibration(image_size: int, grid: tuple[int, int]):
    from .shapes import generate_split  # local import: shapes does not need features

    imgs = generate_split(
        CALIBRATION_SIZE, CALIBRATION_SEED, 0, zero_shot=False, image_size=image_size
    ).images
    region, glob = _raw_descriptors(imgs, grid)
    region = region.reshape(-1, region.shape[-1])

    def stats(a):
        mean = a.mean(axis=0)
        std = a.std(axis=0)
        floor = 0.1 * float(np.median(std[std > 0])) if np.any(std > 0) else 1.0
        return mean, np.maximum(std, floor)

    return stats(region), stats(glob)


def _check_images(images: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    h, w = images.shape[1:3]
    if h != w or h % (grid[0] * 4) or w % (grid[1] * 4):
        raise ValueError(f"image size {h}x{w} must be square and divisible by 4 x grid {grid}")
    return images


def extract_features(
    images: np.ndarray,
    grid: tuple[int, int] = (4, 4),
    dim: int = 512,
    region_dim: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Global ``(N, dim)`` and region ``(N, gh*gw, region_dim)`` float32 features of uint8 images.

    Deterministic: the same images give the same bytes.
    """
    grid = (int(grid[0]), int(grid[1]))
    images = _check_images(images, grid)
    n = images.shape[0]
    (rmean, rstd), (gmean, gstd) = _calibration(images.shape[1], grid)
    r_in, g_in = rmean.size, gmean.size
    p_region = _orthogonal(r_in, region_dim, PROJECTION_SEED + 1) * np.sqrt(max(region_dim / r_in, 1.0))
    p_glob = _orthogonal(g_in, dim, PROJECTION_SEED + 2) * np.sqrt(max(dim / g_in, 1.0))
    if n == 0:
        return np.zeros((0, dim), np.float32), np.zeros((0, grid[0] * grid[1], region_dim), np.float32)
    raws = [_raw_descriptors(images[s : s + 256], grid) for s in range(0, n, 256)]
    zr = (np.concatenate([r for r, _ in raws]) - rmean) / rstd  # (N, R, r_in)
    zg = (np.concatenate([g for _, g in raws]) - gmean) / gstd  # (N, g_in)
    del raws
    out_r = (zr.reshape(-1, r_in) @ p_region).astype(np.float32).reshape(n, grid[0] * grid[1], region_dim)
    out_g = (zg @ p_glob).astype(np.float32)
    return out_g, out_r
