"""A Transformer caption decoder in PyTorch, with DropHead, greedy decoding, beam search and attention maps.

One file, read top to bottom in the order of the math:

    image features --ImageMemory--> memory tokens (N, S, E)          S = 1 (global) or R (region grid)
    caption ids --WordEmbedding + PositionalEncoding--> x (N, T, E)
    x --DecoderLayer x L--> x   each layer: masked self-attention, cross-attention to memory, feed-forward
    x --LayerNorm, Linear--> logits (N, T, V)

Notation in the shape comments: N batch, T caption positions, S memory tokens, E model width (d_model),
H heads, Dh = E / H per-head width, V vocabulary size, B beam size.

Vocabulary conventions: capeval_models.data.vocab's (<NULL>=0, <START>=1, <END>=2, <UNK>=3).
Captions are `<START> w1 .. wk <END> <NULL>...`; the model reads captions[:, :-1] and predicts captions[:, 1:].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.vocab import END_ID as END
from .data.vocab import NULL_ID as NULL
from .data.vocab import START_ID as START
from .data.vocab import ids_to_text

# ----------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TransformerConfig:
    vocab_size: int
    feature_dim: int  # D of the global features, or Dr of the region features
    memory: str = "global"  # "global": one memory token per image; "regions": one per region of a grid
    n_regions: int | None = None  # R, needed for memory="regions" (a learned position per region)
    grid_shape: tuple[int, int] | None = None  # (gh, gw) with gh * gw == R, used to draw attention maps
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None  # feed-forward width; None means 4 * d_model
    dropout: float = 0.1  # residual, embedding and feed-forward dropout
    attn_dropout: float = 0.1  # dropout on the attention weights (unused when use_drophead)
    drophead: float = 0.1  # DropHead rate (used only when use_drophead)
    use_drophead: bool = False  # True: DropHead on whole heads instead of attention-weight dropout
    max_length: int = 18  # longest caption T, <START> and <END> included (16 words)
    extra: dict = field(default_factory=dict)  # free-form metadata kept in checkpoints

    def __post_init__(self):
        if self.memory not in ("global", "regions"):
            raise ValueError(f"memory must be 'global' or 'regions', not {self.memory!r}")
        if self.memory == "regions" and not self.n_regions:
            if self.grid_shape is None:
                raise ValueError("memory='regions' needs n_regions or grid_shape")
            self.n_regions = int(self.grid_shape[0]) * int(self.grid_shape[1])
        if self.grid_shape is not None:
            self.grid_shape = (int(self.grid_shape[0]), int(self.grid_shape[1]))
            if self.memory == "regions" and self.grid_shape[0] * self.grid_shape[1] != self.n_regions:
                raise ValueError(f"grid_shape {self.grid_shape} does not have n_regions={self.n_regions} cells")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.d_model % 2:
            raise ValueError("d_model must be even (sinusoidal encoding pairs sin and cos dimensions)")
        if not 0.0 <= self.drophead < 1.0:
            raise ValueError(f"drophead must be in [0, 1), not {self.drophead}")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid_shape"] = list(self.grid_shape) if self.grid_shape is not None else None
        return d


# ----------------------------------------------------------------------------------------------------------
# Inputs: image memory, word embedding, positional encoding


class ImageMemory(nn.Module):
    """Image features -> memory tokens the decoder attends to.

    global:  (N, D)      -> (N, 1, E)   one token; cross-attention over it is trivially 1.0
    regions: (N, R, Dr)  -> (N, R, E)   one token per grid cell, plus a learned embedding of the cell position
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.memory = config.memory
        self.proj = nn.Linear(config.feature_dim, config.d_model)
        self.region_pos = (
            nn.Parameter(torch.zeros(config.n_regions, config.d_model)) if config.memory == "regions" else None
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.memory == "global":
            if image.dim() != 2:
                raise ValueError(f"global memory expects features of shape (N, D), got {tuple(image.shape)}")
            m = self.proj(image).unsqueeze(1)  # (N, 1, E)
        else:
            if image.dim() != 3 or image.shape[1] != self.region_pos.shape[0]:
                raise ValueError(
                    f"region memory expects (N, {self.region_pos.shape[0]}, Dr), got {tuple(image.shape)}"
                )
            m = self.proj(image) + self.region_pos  # (N, R, E)
        return self.drop(self.norm(m))


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model): pe[p, 2i] = sin(p / 10000^(2i/E)), pe[p, 2i+1] = cos(p / 10000^(2i/E))."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)
    return pe


class PositionalEncoding(nn.Module):
    """x + sinusoidal position code, then dropout. Fixed (a buffer), not learned."""

    def __init__(self, d_model: int, max_length: int, dropout: float):
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_length, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if T > self.pe.shape[0]:
            raise ValueError(f"sequence of length {T} exceeds max_length={self.pe.shape[0]}")
        return self.drop(x + self.pe[:T])  # (N, T, E)


# ----------------------------------------------------------------------------------------------------------
# Attention and DropHead


class DropHead(nn.Module):
    """DropHead (Zhou et al. 2020): in training, drop whole attention heads, per example.

    Input: per-head outputs (N, H, ...). Each example keeps each head with probability 1 - p; kept heads are
    scaled by H / (heads kept), so the expected output equals the undropped one. An example that drew zero
    kept heads keeps all of them instead (scale 1): no division by zero, no all-zero output, and the
    estimator stays exactly unbiased (conditioned on k > 0 kept heads a head survives with probability k / H,
    so E[mask * H / k] = 1 for every k). Identity in eval mode or when p == 0.
    `p` is a plain attribute so a schedule can change it during training (see `scheduled_drophead_rate`).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        N, H = x.shape[:2]
        keep = (torch.rand(N, H, device=x.device) >= self.p).to(x.dtype)  # (N, H)
        kept = keep.sum(dim=1, keepdim=True)  # (N, 1)
        none_kept = kept == 0
        keep = torch.where(none_kept, torch.ones_like(keep), keep)
        kept = torch.where(none_kept, torch.full_like(kept, H), kept)
        scale = keep * (H / kept)  # (N, H)
        return x * scale.view(N, H, *([1] * (x.dim() - 2)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def scheduled_drophead_rate(step: int, total_steps: int, p_start: float, p_end: float | None = None,
                            turn: float = 0.5) -> float:
    """V-shaped scheduled DropHead rate: p_start at step 0, falling linearly to 0 at `turn` of training,
    then rising linearly to p_end (default p_start) at the last step."""
    p_end = p_start if p_end is None else p_end
    if total_steps <= 1:
        return float(p_start)
    t = min(max(step / (total_steps - 1), 0.0), 1.0)
    if t <= turn:
        return float(p_start * (1.0 - t / turn)) if turn > 0 else 0.0
    return float(p_end * (t - turn) / (1.0 - turn))


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, written out.

    query x (N, T, E) attends to source (N, S, E): per head, softmax(q k^T / sqrt(Dh) + mask) v, heads
    concatenated and projected. `mask` (T, S) is boolean, True where attention is allowed; blocked scores
    are filled with -inf before the softmax. Returns (output (N, T, E), weights (N, H, T, S)); the weights
    are the softmax probabilities before any dropout.
    forward = keys_values (project the source) then attend (project the queries, mix); incremental decoding
    calls the two halves separately to reuse keys and values across steps.
    """

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float, drophead: float, use_drophead: bool):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)
        # the switch: DropHead on whole heads *instead of* dropout on individual attention weights
        self.attn_drop = nn.Dropout(0.0 if use_drophead else attn_dropout)
        self.drophead = DropHead(drophead if use_drophead else 0.0)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        N, L, E = t.shape
        return t.view(N, L, self.n_heads, E // self.n_heads).transpose(1, 2)  # (N, H, L, Dh)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._heads(self.key(source)), self._heads(self.value(source))  # 2 x (N, H, S, Dh)

    def attend(self, x, k, v, mask: torch.Tensor | None = None):
        N, T, E = x.shape
        Dh = E // self.n_heads
        q = self._heads(self.query(x))  # (N, H, T, Dh)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(Dh)  # (N, H, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = F.softmax(scores, dim=-1)  # (N, H, T, S)
        y = self.attn_drop(weights) @ v  # (N, H, T, Dh)
        y = self.drophead(y)  # whole heads dropped per example (identity unless use_drophead)
        y = y.transpose(1, 2).reshape(N, T, E)  # (N, T, E) heads side by side
        return self.proj(y), weights

    def forward(self, x, source, mask: torch.Tensor | None = None):
        return self.attend(x, *self.keys_values(source), mask)


def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) boolean, True on and below the diagonal: position t sees positions <= t."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


# ----------------------------------------------------------------------------------------------------------
# Decoder


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff)
        self.proj = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.proj(self.drop(F.gelu(self.fc(x))))  # (N, T, E) -> (N, T, F) -> (N, T, E)


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: x + SelfAttn(LN x), then + CrossAttn(LN x, memory), then + FFN(LN x).
    Dropout on each sub-layer's output before the residual sum."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = config
        self.norm1 = nn.LayerNorm(c.d_model)
        self.self_attn = MultiHeadAttention(c.d_model, c.n_heads, c.attn_dropout, c.drophead, c.use_drophead)
        self.norm2 = nn.LayerNorm(c.d_model)
        self.cross_attn = MultiHeadAttention(c.d_model, c.n_heads, c.attn_dropout, c.drophead, c.use_drophead)
        self.norm3 = nn.LayerNorm(c.d_model)
        self.ffn = FeedForward(c.d_model, c.d_ff, c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, memory, mask):
        h = self.norm1(x)
        a, _ = self.self_attn(h, h, mask)  # (N, T, E), causal
        x = x + self.drop(a)
        c, cross_weights = self.cross_attn(self.norm2(x), memory)  # (N, T, E), weights (N, H, T, S)
        x = x + self.drop(c)
        x = x + self.drop(self.ffn(self.norm3(x)))
        return x, cross_weights

    def step(self, x, cache: dict):
        """Incremental decoding (evaluation only): x (N, 1, E) is the newest position. cache["self"] holds
        the self-attention keys/values of the earlier positions (grown here), cache["cross"] the memory's."""
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)  # (N, H, 1, Dh)
        if cache["self"] is not None:
            k = torch.cat([cache["self"][0], k], dim=2)  # (N, H, t+1, Dh)
            v = torch.cat([cache["self"][1], v], dim=2)
        cache["self"] = (k, v)
        a, _ = self.self_attn.attend(h, k, v)  # the newest position sees all positions so far: no mask
        x = x + a
        c, _ = self.cross_attn.attend(self.norm2(x), *cache["cross"])
        x = x + c
        return x + self.ffn(self.norm3(x))


class CaptioningTransformer(nn.Module):
    """Transformer caption decoder conditioned on image features.

    CaptioningTransformer(vocab_size, feature_dim, d_model=128, n_heads=4, n_layers=2, memory="global", ...)
    (any TransformerConfig field as a keyword), or CaptioningTransformer.from_config(config).

    forward(captions_in (N, T), image) -> logits (N, T, V), and with return_attention=True also the list of
    per-layer cross-attention weights, each (N, H, T, S). `image` is the global features (N, D) when
    memory="global", the region features (N, R, Dr) when memory="regions" (see `image_input`).
    """

    def __init__(self, vocab_size: int | None = None, feature_dim: int | None = None, *,
                 config: TransformerConfig | None = None, **kwargs):
        super().__init__()
        if config is None:
            config = TransformerConfig(vocab_size=vocab_size, feature_dim=feature_dim, **kwargs)
        elif vocab_size is not None or feature_dim is not None or kwargs:
            raise TypeError("pass either a config or keyword arguments, not both")
        self.config = config
        c = config
        self.memory = ImageMemory(c)
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = PositionalEncoding(c.d_model, c.max_length, c.dropout)
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c.n_layers)])
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        self.apply(self._init_weights)

    @classmethod
    def from_config(cls, config: TransformerConfig | dict) -> CaptioningTransformer:
        if isinstance(config, dict):
            config = TransformerConfig(**config)
        return cls(config=config)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def image_input(self, batch) -> torch.Tensor:
        """This model's image input from a minibatch dict or a split (`features` for memory="global",
        `regions` for memory="regions"), as a float32 tensor on the model's device."""
        key = "features" if self.config.memory == "global" else "regions"
        x = batch.get(key) if isinstance(batch, dict) else getattr(batch, key, None)
        if x is None:
            raise ValueError(f"a memory={self.config.memory!r} model needs {key!r}, which is missing")
        return _as_image(self, x)

    def set_drophead_rate(self, p: float) -> None:
        """Set the DropHead rate of every attention layer (no effect unless built with use_drophead)."""
        if not self.config.use_drophead:
            return
        for m in self.modules():
            if isinstance(m, DropHead):
                m.p = float(p)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.memory(image)  # (N, S, E)

    def decode(self, captions_in: torch.Tensor, memory: torch.Tensor, return_attention: bool = False):
        N, T = captions_in.shape
        x = self.pos(self.embed(captions_in))  # (N, T, E)
        mask = causal_mask(T, device=x.device)
        attention = []
        for layer in self.layers:
            x, w = layer(x, memory, mask)
            attention.append(w)
        logits = self.head(self.norm(x))  # (N, T, V)
        return (logits, attention) if return_attention else logits

    def forward(self, captions_in, image, return_attention: bool = False):
        return self.decode(captions_in, self.encode(image), return_attention)

    def start_cache(self, memory: torch.Tensor) -> list[dict]:
        """Decoding state, one dict per layer: the memory's cross-attention keys/values (computed once) and
        the self-attention keys/values of the positions decoded so far (none yet)."""
        return [{"cross": layer.cross_attn.keys_values(memory), "self": None, "length": 0} for layer in self.layers]

    def step(self, tokens: torch.Tensor, cache: list[dict]) -> torch.Tensor:
        """Feed one token per sequence, tokens (N,), at the next position; returns next-token logits (N, V).
        Equals decode() on the whole prefix (last position), in O(t) instead of O(t^2). Evaluation only."""
        t = cache[0]["length"]
        if t >= self.pos.pe.shape[0]:
            raise ValueError(f"cannot decode beyond max_length={self.pos.pe.shape[0]}")
        x = self.embed(tokens)[:, None, :] + self.pos.pe[t]  # (N, 1, E)
        for layer, c in zip(self.layers, cache):
            x = layer.step(x, c)
            c["length"] = t + 1
        return self.head(self.norm(x[:, 0]))  # (N, V)

    @staticmethod
    def reorder_cache(cache: list[dict], index: torch.Tensor) -> None:
        """Beam search: row i of the state becomes row index[i]. The cross-attention keys/values stay: beams
        of one image share the same memory, and a beam only ever continues a beam of its own image."""
        for c in cache:
            if c["self"] is not None:
                c["self"] = (c["self"][0][index], c["self"][1][index])

    def loss(self, captions: torch.Tensor, image: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Teacher forcing: read captions[:, :-1], predict captions[:, 1:]; <NULL> targets are ignored.
        Mean cross-entropy per non-<NULL> target token."""
        return caption_loss(self(captions[:, :-1], image), captions[:, 1:], label_smoothing)


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of logits (N, T, V) against targets (N, T), averaged over the non-<NULL> targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=NULL, label_smoothing=label_smoothing)


# ----------------------------------------------------------------------------------------------------------
# Decoding


@dataclass
class Decoded:
    """Decoder output. ids (N, L): generated tokens after <START>, <END> included, <NULL> after it.
    logprob (N,): sum of the model's log-probabilities of the generated tokens (<END> included).
    score (N,): the ranking score (logprob / length penalty; equals logprob with length_penalty=0)."""

    ids: torch.Tensor
    texts: list
    logprob: torch.Tensor
    score: torch.Tensor


def _length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT length penalty ((5 + length) / 6) ** alpha; 1 when alpha == 0 (rank by raw log-probability)."""
    if alpha == 0:
        return torch.ones_like(length, dtype=torch.float32)
    return ((5.0 + length.float()) / 6.0) ** alpha


def _next_logprobs(model, tokens, cache) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, V) log-probabilities of the next token, and the same with -inf where a token can never be
    generated (<NULL>, <START>)."""
    logp = F.log_softmax(model.step(tokens, cache).float(), dim=-1)  # (N, V)
    blocked = torch.full_like(logp, 0.0)
    blocked[:, NULL] = float("-inf")
    blocked[:, START] = float("-inf")
    return logp, logp + blocked


def _as_image(model, image) -> torch.Tensor:
    device = model.head.weight.device
    if torch.is_tensor(image):
        return image.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(image), dtype=torch.float32, device=device)


def _with_start(model, ids) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (N, L) generated tokens -> (ids, decoder input [<START>, ids[:, :-1]]) on the model's device."""
    ids = torch.as_tensor(np.asarray(ids) if not torch.is_tensor(ids) else ids, dtype=torch.long,
                          device=model.head.weight.device)
    start = torch.full((ids.shape[0], 1), START, dtype=torch.long, device=ids.device)
    return ids, torch.cat([start, ids[:, :-1]], dim=1)


def _default_max_length(model, max_length):
    limit = model.config.max_length - 1  # tokens after <START>
    if max_length is None:
        return limit
    if not 1 <= max_length <= limit:
        raise ValueError(f"max_length must be in [1, {limit}] for this model, not {max_length}")
    return max_length


@torch.no_grad()
def greedy_decode(model: CaptioningTransformer, image, *, max_length: int | None = None,
                  vocab=None) -> Decoded:
    """Batched greedy decoding: at each step the most probable next token, until <END> or max_length
    tokens (default: the model's max_length - 1, i.e. 16 words + <END>)."""
    was_training = model.training
    model.eval()
    try:
        L = _default_max_length(model, max_length)
        image = _as_image(model, image)
        memory = model.encode(image)  # (N, S, E)
        N = memory.shape[0]
        cache = model.start_cache(memory)
        seqs = torch.full((N, 1), START, dtype=torch.long, device=memory.device)
        logprob = torch.zeros(N, device=memory.device)
        done = torch.zeros(N, dtype=torch.bool, device=memory.device)
        for _ in range(L):
            logp, allowed = _next_logprobs(model, seqs[:, -1], cache)
            tok = allowed.argmax(dim=-1)  # (N,)
            tok = torch.where(done, torch.full_like(tok, NULL), tok)
            logprob += torch.where(done, torch.zeros_like(logprob), logp.gather(1, tok[:, None]).squeeze(1))
            seqs = torch.cat([seqs, tok[:, None]], dim=1)
            done |= tok == END
            if done.all():
                break
        ids = seqs[:, 1:]
        texts = [ids_to_text(row, vocab) for row in ids]
        return Decoded(ids=ids, texts=texts, logprob=logprob, score=logprob.clone())
    finally:
        model.train(was_training)


@torch.no_grad()
def beam_search(model: CaptioningTransformer, image, *, beam_size: int = 3, length_penalty: float = 0.0,
                max_length: int | None = None, vocab=None, keep_greedy: bool = True) -> Decoded:
    """Batched beam search. Hypotheses are ranked by logprob / ((5 + length) / 6) ** length_penalty
    (length counts <END>); a hypothesis that emitted <END> is finished and keeps its score while the others
    grow; search stops when every beam of every image is finished or after max_length tokens.

    Plain beam search can prune the greedy path and end below it; with keep_greedy (default) the greedy
    hypothesis is also scored and kept when it ranks higher, so a beam never returns a worse score than
    greedy decoding. beam_size=1 is greedy decoding.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, not {beam_size}")
    was_training = model.training
    model.eval()
    try:
        L = _default_max_length(model, max_length)
        image = _as_image(model, image)
        memory = model.encode(image)  # (N, S, E)
        N, B, dev = memory.shape[0], beam_size, memory.device
        memory = memory.repeat_interleave(B, dim=0)  # (N*B, S, E)
        cache = model.start_cache(memory)
        seqs = torch.full((N * B, 1), START, dtype=torch.long, device=dev)
        logprob = torch.zeros(N, B, device=dev)
        logprob[:, 1:] = float("-inf")  # start from one beam so the first step picks B distinct tokens
        length = torch.zeros(N, B, dtype=torch.long, device=dev)
        finished = torch.zeros(N, B, dtype=torch.bool, device=dev)
        offsets = (torch.arange(N, device=dev) * B)[:, None]  # (N, 1)
        for _ in range(L):
            _, allowed = _next_logprobs(model, seqs[:, -1], cache)
            V = allowed.shape[-1]
            allowed = allowed.view(N, B, V)
            # a finished hypothesis continues only with <NULL>, at no cost
            frozen = torch.full((V,), float("-inf"), device=dev)
            frozen[NULL] = 0.0
            allowed = torch.where(finished[..., None], frozen, allowed)
            cand = logprob[..., None] + allowed  # (N, B, V)
            cand_len = length + (~finished).long()  # (N, B)
            rank = cand / _length_penalty(cand_len, length_penalty)[..., None]
            _, top = rank.view(N, B * V).topk(B, dim=-1)  # (N, B)
            src, tok = top // V, top % V  # source beam and new token
            logprob = cand.view(N, B * V).gather(1, top)
            length = cand_len.gather(1, src)
            finished = finished.gather(1, src) | (tok == END)
            rows = (offsets + src).view(-1)  # (N*B,) the hypothesis each new beam continues
            seqs = torch.cat([seqs[rows], tok.view(-1, 1)], dim=1)
            model.reorder_cache(cache, rows)
            if finished.all():
                break
        score = logprob / _length_penalty(length, length_penalty)  # (N, B)
        best = score.argmax(dim=1)  # (N,)
        ids = seqs.view(N, B, -1)[torch.arange(N, device=dev), best, 1:]  # (N, L')
        best_logprob = logprob.gather(1, best[:, None]).squeeze(1)
        best_score = score.gather(1, best[:, None]).squeeze(1)
        if keep_greedy and B > 1:
            g = greedy_decode(model, image, max_length=L)
            g_len = ((g.ids != NULL).sum(dim=1)).clamp(min=1)
            g_score = g.logprob / _length_penalty(g_len, length_penalty)
            use_greedy = g_score > best_score
            if use_greedy.any():
                width = max(ids.shape[1], g.ids.shape[1])
                ids, g_ids = F.pad(ids, (0, width - ids.shape[1])), F.pad(g.ids, (0, width - g.ids.shape[1]))
                ids = torch.where(use_greedy[:, None], g_ids, ids)
                best_logprob = torch.where(use_greedy, g.logprob, best_logprob)
                best_score = torch.where(use_greedy, g_score, best_score)
        ids = _trim(ids)
        texts = [ids_to_text(row, vocab) for row in ids]
        return Decoded(ids=ids, texts=texts, logprob=best_logprob, score=best_score)
    finally:
        model.train(was_training)


def _trim(ids: torch.Tensor) -> torch.Tensor:
    """Drop trailing all-<NULL> columns."""
    nonnull = (ids != NULL).any(dim=0).nonzero()
    return ids[:, : int(nonnull.max()) + 1] if len(nonnull) else ids[:, :1]


@torch.no_grad()
def sequence_logprob(model: CaptioningTransformer, image, ids: torch.Tensor) -> torch.Tensor:
    """(N,) model log-probability of given generated ids (N, L) (tokens after <START>, <NULL>-padded),
    recomputed by teacher forcing; the score both decoders report with length_penalty=0."""
    was_training = model.training
    model.eval()
    try:
        ids, inp = _with_start(model, ids)
        logp = F.log_softmax(model(inp, _as_image(model, image)).float(), dim=-1)  # (N, L, V)
        tok_logp = logp.gather(2, ids[..., None]).squeeze(2)  # (N, L)
        return (tok_logp * (ids != NULL)).sum(dim=1)
    finally:
        model.train(was_training)


@torch.no_grad()
def word_attention(model: CaptioningTransformer, image, ids: torch.Tensor, layer: int = -1) -> np.ndarray:
    """Cross-attention over the image memory for each generated token, averaged over heads.

    ids (N, L) generated tokens (as in Decoded.ids). Returns (N, L, S): row l is the attention of the query
    that produced token l (the query at the position reading token l-1, or <START> for l = 0), from decoder
    layer `layer` (default the last; any index into the layers, negative counts from the end). With a global
    memory S = 1 and every row is exactly 1.0."""
    was_training = model.training
    model.eval()
    try:
        n_layers = len(model.layers)
        if not -n_layers <= layer < n_layers:
            raise IndexError(f"layer {layer} out of range for a {n_layers}-layer model")
        ids, inp = _with_start(model, ids)
        _, attention = model(inp, _as_image(model, image), return_attention=True)
        return attention[layer].mean(dim=1).cpu().numpy()  # (N, H, L, S) -> (N, L, S)
    finally:
        model.train(was_training)
