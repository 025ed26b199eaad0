"""DropHead: unbiased, whole heads, guarded, identity in evaluation, V-shaped schedule, the model switch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from capeval_models.transformer import (  # noqa: E402
    CaptioningTransformer,
    DropHead,
    MultiHeadAttention,
    scheduled_drophead_rate,
)


def test_expected_output_equals_the_undropped_output():
    torch.manual_seed(0)
    N, H, T, D = 40000, 4, 3, 5
    x = torch.randn(1, H, T, D).expand(N, H, T, D)  # the same input for every example
    for p in (0.1, 0.3, 0.6):
        drop = DropHead(p).train()
        y = drop(x)
        mean, sem = y.mean(0), y.std(0) / np.sqrt(N)
        z = ((mean - x[0]) / sem.clamp(min=1e-6)).abs()
        assert z.max() < 5.0, (p, z.max())  # within 5 standard errors everywhere (60 cells)


def test_heads_are_dropped_as_wholes_and_kept_ones_rescaled():
    torch.manual_seed(1)
    N, H, T, D = 500, 4, 3, 5
    x = torch.rand(N, H, T, D) + 0.5  # nonzero everywhere
    y = DropHead(0.4).train()(x)
    ratio = y / x  # (N, H, T, D): one value per (example, head)
    flat = ratio.reshape(N, H, -1)
    assert torch.allclose(flat, flat[..., :1].expand_as(flat))  # constant within each head
    scale = flat[..., 0]  # (N, H)
    kept = (scale > 0).sum(1)
    assert (kept > 0).all()
    torch.testing.assert_close(scale[scale > 0], (H / kept.float()).unsqueeze(1).expand(N, H)[scale > 0])
    n_dropped = (scale == 0).sum().item()
    assert 0.3 * N * H < n_dropped < 0.5 * N * H  # about p of the heads
    assert len({tuple(row) for row in (scale > 0).tolist()}) > 5  # different examples drop different heads


def test_every_head_dropped_is_guarded():
    torch.manual_seed(2)
    x = torch.randn(2000, 2, 4, 3)
    y = DropHead(0.95).train()(x)  # most examples draw "drop both heads"
    assert torch.isfinite(y).all()
    both_kept_unscaled = (y == x).flatten(1).all(1)
    assert both_kept_unscaled.float().mean() > 0.8  # those examples keep every head, scale H / H = 1
    with pytest.raises(ValueError):
        CaptioningTransformer(10, 4, use_drophead=True, drophead=1.0)


def test_evaluation_is_deterministic_and_the_identity():
    x = torch.randn(8, 4, 3, 5)
    drop = DropHead(0.5).eval()
    assert torch.equal(drop(x), x)
    torch.manual_seed(3)
    model = CaptioningTransformer(20, 6, d_model=32, n_heads=4, use_drophead=True, drophead=0.5)
    caps = torch.randint(3, 20, (4, 9))
    image = torch.randn(4, 6)
    model.eval()
    a, b = model(caps, image), model(caps, image)
    assert torch.equal(a, b)
    model.set_drophead_rate(0.0)
    assert torch.equal(model(caps, image), a)  # eval output does not depend on the rate
    model.set_drophead_rate(0.5)
    model.train()
    assert not torch.equal(model(caps, image), model(caps, image))  # training is random


def test_switch_replaces_attention_dropout():
    with_dh = MultiHeadAttention(16, 4, attn_dropout=0.3, drophead=0.2, use_drophead=True)
    without = MultiHeadAttention(16, 4, attn_dropout=0.3, drophead=0.2, use_drophead=False)
    assert with_dh.attn_drop.p == 0.0 and with_dh.drophead.p == 0.2
    assert without.attn_drop.p == 0.3 and without.drophead.p == 0.0
    model = CaptioningTransformer(20, 6, d_model=32, use_drophead=True, drophead=0.25)
    rates = [m.p for m in model.modules() if isinstance(m, DropHead)]
    assert rates == [0.25] * 4  # self- and cross-attention of 2 layers
    model.set_drophead_rate(0.05)
    assert {m.p for m in model.modules() if isinstance(m, DropHead)} == {0.05}
    plain = CaptioningTransformer(20, 6, d_model=32)
    plain.set_drophead_rate(0.5)  # no effect without the switch
    assert {m.p for m in plain.modules() if isinstance(m, DropHead)} == {0.0}


def test_attention_layer_output_is_unbiased_under_drophead():
    torch.manual_seed(4)
    mha = MultiHeadAttention(16, 4, attn_dropout=0.0, drophead=0.3, use_drophead=True)
    x, src = torch.randn(1, 3, 16), torch.randn(1, 5, 16)
    mha.eval()
    ref, _ = mha(x, src)
    mha.train()
    with torch.no_grad():
        outs, _ = mha(x.expand(20000, 3, 16), src.expand(20000, 5, 16))
    sem = outs.std(0) / np.sqrt(len(outs))
    assert ((outs.mean(0) - ref[0]).abs() / sem.clamp(min=1e-6)).max() < 5.0


def test_v_shaped_schedule():
    total, p = 101, 0.2
    rates = [scheduled_drophead_rate(s, total, p) for s in range(total)]
    assert rates[0] == pytest.approx(p) and rates[50] == pytest.approx(0.0) and rates[-1] == pytest.approx(p)
    assert all(a >= b for a, b in zip(rates[:51], rates[1:51]))  # falling
    assert all(a <= b for a, b in zip(rates[50:], rates[51:]))  # then rising
    assert scheduled_drophead_rate(25, total, p) == pytest.approx(p / 2)
    assert scheduled_drophead_rate(100, total, 0.3, p_end=0.1) == pytest.approx(0.1)
    assert scheduled_drophead_rate(30, total, p, turn=0.3) == pytest.approx(0.0)
