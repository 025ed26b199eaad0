"""A tiny random captioning split with the dataset interface, for the numpy model tests."""

import numpy as np

SPECIALS = ["<NULL>", "<START>", "<END>", "<UNK>"]


class TinyCaptions:
    """A random captioning split with the dataset interface (features, captions, sample_minibatch)."""

    def __init__(self, n=50, D=32, T=17, n_words=36, seed=0, min_words=5, id_prefix="img"):
        rng = np.random.default_rng(seed)
        self.word_to_idx = {w: i for i, w in enumerate(SPECIALS + [f"w{i}" for i in range(n_words)])}
        self.features = rng.standard_normal((n, D)).astype(np.float32)
        self.image_ids = [f"{id_prefix}{i}" for i in range(n)]
        self.captions = np.zeros((n, T), dtype=np.int32)
        for i in range(n):
            k = int(rng.integers(min_words, T - 1))
            self.captions[i, 0] = 1
            self.captions[i, 1 : k + 1] = rng.integers(4, len(self.word_to_idx), size=k)
            self.captions[i, k + 1] = 2
        self.image_idxs = np.arange(n)

    def sample_minibatch(self, batch_size, rng):
        idx = rng.integers(len(self.captions), size=batch_size)
        ii = self.image_idxs[idx]
        return {"captions": self.captions[idx], "features": self.features[ii], "regions": None, "image_idxs": ii}
