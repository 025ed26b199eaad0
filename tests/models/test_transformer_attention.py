"""Per-word cross-attention maps: values, layer choice, the global-memory note, PNG figures."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from toy_split import ToySplit  # noqa: E402

pytest.importorskip("matplotlib")

from capeval_models.attention_maps import (  # noqa: E402
    GLOBAL_MEMORY_NOTE,
    attention_figure,
    caption_attention_maps,
    plot_attention_maps,
    upsample,
)
from capeval_models.transformer import END, CaptioningTransformer, greedy_decode, word_attention  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def split():
    return ToySplit(num_images=4, captions_per_image=1, seed=3)


def region_model(split, n_layers=2):
    torch.manual_seed(0)
    return CaptioningTransformer(len(split.vocab.idx_to_word), split.regions.shape[2], memory="regions",
                                 grid_shape=split.grid_shape, d_model=32, n_layers=n_layers).eval()


def test_word_attention_is_the_head_average_of_the_query_that_produced_each_word(split):
    model = region_model(split)
    regions = torch.as_tensor(split.regions)
    dec = greedy_decode(model, regions)
    att = word_attention(model, regions, dec.ids)
    N, L = dec.ids.shape
    assert att.shape == (N, L, 16)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-5)
    inp = torch.cat([torch.ones(N, 1, dtype=torch.long), dec.ids[:, :-1]], dim=1)  # <START>, w1, ...
    _, layers = model(inp, regions, return_attention=True)
    np.testing.assert_allclose(att, layers[-1].mean(1).detach().numpy(), rtol=1e-6)
    first = word_attention(model, regions, dec.ids, layer=0)
    np.testing.assert_allclose(first, layers[0].mean(1).detach().numpy(), rtol=1e-6)
    assert not np.allclose(first, att)
    np.testing.assert_allclose(word_attention(model, regions, dec.ids, layer=1), att)
    with pytest.raises(IndexError):
        word_attention(model, regions, dec.ids, layer=2)


def test_global_memory_attention_is_trivially_one(split, tmp_path):
    torch.manual_seed(0)
    model = CaptioningTransformer(len(split.vocab.idx_to_word), split.features.shape[1], d_model=32).eval()
    feats = torch.as_tensor(split.features)
    dec = greedy_decode(model, feats)
    att = word_attention(model, feats, dec.ids)
    assert att.shape == (4, dec.ids.shape[1], 1) and np.all(att == 1.0)
    out = caption_attention_maps(model, split.features[0], tmp_path / "g.png", vocab=split.vocab,
                                 image=split.images[0])
    assert out["path"].read_bytes()[:8] == PNG_MAGIC
    fig = attention_figure(["a", "cat"], np.ones((2, 1)))
    assert GLOBAL_MEMORY_NOTE in fig._suptitle.get_text()


def test_figure_has_one_panel_per_word_titled_with_the_word(split, tmp_path):
    words = ["a", "big", "red", "square"]
    weights = np.random.default_rng(0).dirichlet(np.ones(16), size=4)
    fig = attention_figure(words, weights, image=split.images[0], grid_shape=(4, 4), title="t", ncols=3)
    *panels, colorbar = fig.get_axes()
    assert [ax.get_title() for ax in panels] == ["image"] + words  # the plain image first, then each word
    assert colorbar.get_ylabel().startswith("attention weight")
    np.testing.assert_array_equal(panels[0].get_images()[0].get_array(), split.images[0])  # unblended
    assert len(panels[0].get_images()) == 1
    for k, ax in enumerate(panels[1:]):
        picture, mask = ax.get_images()  # the image unchanged, and the dimming mask over it
        np.testing.assert_array_equal(picture.get_array(), split.images[0])
        smooth = np.asarray(mask.get_array())
        assert smooth.shape == split.images[0].shape[:2]
        # the mask is the word's weights, upsampled: its grid-cell means follow the weights' order
        cells = smooth.reshape(4, smooth.shape[0] // 4, 4, smooth.shape[1] // 4).mean(axis=(1, 3)).ravel()
        assert np.argmax(cells) == np.argmax(weights[k])
        assert mask.get_clim() == (0.0, weights.max())  # one scale for every panel
        # the mask's colours are black with falling opacity: no hue is blended into the objects
        rgba = mask.cmap(np.linspace(0, 1, 5))
        assert np.all(rgba[:, :3] == 0) and rgba[0, 3] > 0.5 and rgba[-1, 3] == 0
    assert GLOBAL_MEMORY_NOTE not in fig._suptitle.get_text()
    bare = attention_figure(words, weights, grid_shape=(4, 4))  # no pixels available: the grid alone
    *bare_panels, _ = bare.get_axes()
    assert [ax.get_title() for ax in bare_panels] == words
    assert all(len(ax.get_images()) == 1 for ax in bare_panels)
    np.testing.assert_allclose(np.asarray(bare_panels[1].get_images()[0].get_array()), weights[1].reshape(4, 4))
    path = plot_attention_maps(words, weights, tmp_path / "sub" / "maps.png", image=split.images[0])
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError):
        attention_figure(words, weights[:3])
    with pytest.raises(ValueError):
        attention_figure(words, weights, grid_shape=(3, 5))
    with pytest.raises(ValueError):
        attention_figure(words, np.ones((4, 6)) / 6)  # 6 tokens: not square, no grid_shape given


def test_caption_attention_maps_end_to_end(split, tmp_path):
    model = region_model(split, n_layers=1)
    out = caption_attention_maps(model, split.regions[1], tmp_path / "maps.png", vocab=split.vocab,
                                 image=split.images[1], beam_size=2, include_end=True)
    dec_words = out["caption"].split()
    assert out["words"][: len(dec_words)] == dec_words
    assert out["weights"].shape == (len(out["words"]), 16)
    assert out["path"].read_bytes()[:8] == PNG_MAGIC
    if len(out["words"]) > len(dec_words):
        assert out["words"][-1] == split.vocab.idx_to_word[END]
    no_file = caption_attention_maps(model, split.regions[1:2], vocab=split.vocab)
    assert no_file["path"] is None and no_file["words"] == no_file["caption"].split()  # greedy, no <END>
    with pytest.raises(ValueError):
        caption_attention_maps(model, split.regions[:2])


def test_upsample_is_bilinear_between_cell_centres():
    # a 2x2 grid over 4x4 pixels: cell centres sit at pixels 0.5 and 2.5, so pixel centres 0..3 map to grid
    # coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    up = upsample(np.array([[0.0, 1.0], [2.0, 3.0]]), 4, 4)
    np.testing.assert_allclose(up[0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(up[:, 0], [0.0, 0.5, 1.5, 2.0])
    np.testing.assert_allclose(up[3], [2.0, 2.25, 2.75, 3.0])
