"""A synthetic captioning task for the Transformer's unit tests and the torchrun example (no data download):
coloured squares on grey, captioned from three templates. Kept in tests: the product trains on the embedded
shapes dataset (capeval_models.data)."""

import numpy as np

from capeval_models.data.vocab import SPECIAL_TOKENS, Vocabulary


class ToySplit:
    """Coloured squares on grey: "a big red square in the top left". Same interface as the data package's
    splits: features (N, D), regions (N, R, Dr) with grid_shape, images (N, H, W, 3) uint8, image_ids,
    captions (M, T) int32, image_idxs (M,), vocab, sample_minibatch(batch_size, rng)."""

    COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}
    SIZES = {"small": 6, "big": 12}

    def __init__(self, num_images: int = 64, captions_per_image: int = 2, seed: int = 0, image_size: int = 32,
                 grid: int = 4, feature_dim: int = 64, region_dim: int = 8, T: int = 18):
        rng = np.random.default_rng(seed)
        S, cell = image_size, image_size // grid
        self.grid_shape = (grid, grid)
        images = np.empty((num_images, S, S, 3), dtype=np.uint8)
        texts = []
        for n in range(num_images):
            color, size = rng.choice(list(self.COLORS)), rng.choice(list(self.SIZES))
            vert, horiz = rng.choice(["top", "bottom"]), rng.choice(["left", "right"])
            img = np.clip(rng.normal(128, 12, (S, S, 3)), 0, 255)
            side = self.SIZES[size]
            y0 = (0 if vert == "top" else S // 2) + rng.integers(0, S // 2 - side + 1)
            x0 = (0 if horiz == "left" else S // 2) + rng.integers(0, S // 2 - side + 1)
            img[y0: y0 + side, x0: x0 + side] = self.COLORS[color]
            images[n] = img.astype(np.uint8)
            variants = [f"a {size} {color} square in the {vert} {horiz}", f"a {color} square at the {vert} {horiz}",
                        f"there is a {size} {color} square in the {vert} {horiz} corner"]
            texts.append(variants[:captions_per_image])
        cells = images.reshape(num_images, grid, cell, grid, cell, 3).astype(np.float32) / 255.0
        mean = cells.mean(axis=(2, 4)).reshape(num_images, grid * grid, 3)  # (N, R, 3)
        spread = cells.std(axis=(2, 4)).reshape(num_images, grid * grid, 3)
        regions = np.concatenate([mean, spread], axis=2)
        pad = region_dim - regions.shape[2]
        self.regions = np.concatenate([regions, 0.05 * rng.standard_normal((num_images, grid * grid, pad))],
                                      axis=2).astype(np.float32)[:, :, :region_dim]
        flat = mean.reshape(num_images, -1)
        noise = 0.05 * rng.standard_normal((num_images, max(0, feature_dim - flat.shape[1])))
        self.features = np.concatenate([flat, noise], axis=1).astype(np.float32)[:, :feature_dim]
        self.images = images
        self.image_ids = [f"toy{n:05d}" for n in range(num_images)]
        self.vocab = Vocabulary(list(SPECIAL_TOKENS) + sorted({w for caps in texts for c in caps for w in c.split()}))
        self.captions = self.vocab.encode_tokens([c.split() for caps in texts for c in caps], max_words=T - 2)
        self.image_idxs = np.array([n for n, caps in enumerate(texts) for _ in caps], dtype=np.int64)
        self.texts = [c for caps in texts for c in caps]

    def __len__(self) -> int:
        return len(self.captions)

    def sample_minibatch(self, batch_size: int, rng: np.random.Generator) -> dict:
        pick = rng.choice(len(self.captions), size=batch_size, replace=batch_size > len(self.captions))
        idx = self.image_idxs[pick]
        return {"captions": self.captions[pick], "features": self.features[idx], "regions": self.regions[idx],
                "image_idxs": idx}


