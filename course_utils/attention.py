"""Self-attention from scratch: reference implementations for notebook 04, and a tiny causal transformer.

Conventions: sequences are batch first, `(B, L, E)`. Attention takes queries `(..., Lq, d)`, keys
`(..., Lk, d)` and values `(..., Lk, dv)`; the leading dimensions (batch, heads) are shared.
Boolean masks: True means "may attend" (the convention of `F.scaled_dot_product_attention`), the
opposite of the boolean masks of `nn.MultiheadAttention`, where True means "blocked".

Besides the graded references, the module holds what the later notebooks build on:
`CausalTransformerBlock(d_model, num_heads, d_ff=None, dropout=0.0)`, a pre-norm transformer block
with causal multi-head self-attention written from scratch, and
`TinyCausalTransformer(vocab_size, d_model=32, num_heads=2, num_layers=2, max_len=64, d_ff=None,
dropout=0.0)`, token embedding + sinusoidal positions + blocks + a linear read-out to logits.
"""
import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .reference import reference


# ---------------------------------------------------------------------------------------------
# Attention


def attention(q, k, v, mask=None, temperature=1.0):
    """softmax(q k^T / (temperature sqrt(d)), masked) v, and the weights. Not graded: the helper the rest uses.

    q `(..., Lq, d)`, k `(..., Lk, d)`, v `(..., Lk, dv)`, mask bool broadcastable to `(..., Lq, Lk)`
    (True = may attend) -> out `(..., Lq, dv)`, weights `(..., Lq, Lk)`. A fully masked row gives NaN.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / (temperature * math.sqrt(d))  # (..., Lq, d) x (..., d, Lk) -> (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))            # blocked keys get weight exp(-inf) = 0
    weights = torch.softmax(scores, dim=-1)                          # (..., Lq, Lk), each row sums to 1
    return weights @ v, weights                                      # (..., Lq, Lk) x (..., Lk, dv) -> (..., Lq, dv)


@reference("scaled_dot_product_attention")
def scaled_dot_product_attention(q, k, v, mask=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, blocked scores set to -inf before the softmax.

    q `(..., Lq, d)`, k `(..., Lk, d)`, v `(..., Lk, dv)`, mask bool broadcastable to `(..., Lq, Lk)`,
    True = may attend -> (out `(..., Lq, dv)`, weights `(..., Lq, Lk)`).
    `out` equals `F.scaled_dot_product_attention(q, k, v, attn_mask=mask)`.
    """
    return attention(q, k, v, mask)


@reference("causal_mask")
def causal_mask(L):
    """Bool `(L, L)`, M[i, j] = (j <= i): position i may attend to itself and to the positions before it."""
    positions = torch.arange(L)
    return positions[:, None] >= positions[None, :]                  # (L, 1) vs (1, L) -> (L, L)


@reference("sinusoidal_positional_encoding")
def sinusoidal_positional_encoding(L, d):
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)): `(L, d)`, d even.

    Computed in float64 and returned in the default float dtype (float32 unless changed).
    """
    if d % 2:
        raise ValueError(f"d must be even (sines and cosines come in pairs), got {d}")
    p = torch.arange(L, dtype=torch.float64)[:, None]                # (L, 1) positions
    two_i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]      # (1, d/2) even column indices 2i
    angles = p / 10000 ** (two_i / d)                                # (L, d/2): one frequency per pair
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (L, d/2, 2): sin and cos side by side
    return pe.reshape(L, d).to(torch.get_default_dtype())            # (L, d): columns sin, cos, sin, cos, ...


def split_heads(x, num_heads):
    """`(B, L, E)` -> `(B, num_heads, L, E / num_heads)`: head h owns features h*hd ... (h+1)*hd - 1."""
    B, L, E = x.shape
    return x.reshape(B, L, num_heads, E // num_heads).transpose(1, 2)  # (B, L, H, hd) -> (B, H, L, hd)


def merge_heads(x):
    """`(B, H, L, hd)` -> `(B, L, H * hd)`: the heads' outputs side by side, head 0 first."""
    B, H, L, hd = x.shape
    return x.transpose(1, 2).reshape(B, L, H * hd)                   # (B, L, H, hd) -> (B, L, E)


def self_attention_heads(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None,
                         temperature=1.0):
    """Multi-head self-attention that also returns each head's weights. Not graded.

    x `(B, L, E)` -> out `(B, L, E)`, weights `(B, H, L, L)`; arguments as in `multi_head_self_attention`.
    """
    E = x.shape[-1]
    if E % num_heads:
        raise ValueError(f"embedding size {E} is not divisible by num_heads = {num_heads}")
    qkv = F.linear(x, in_proj_weight, in_proj_bias)                  # (B, L, 3E): rows of W are [W_q; W_k; W_v]
    q, k, v = (split_heads(part, num_heads) for part in qkv.chunk(3, dim=-1))  # 3 x (B, H, L, hd)
    heads, weights = attention(q, k, v, mask, temperature)           # (B, H, L, hd), (B, H, L, L)
    return F.linear(merge_heads(heads), out_proj_weight, out_proj_bias), weights  # (B, L, E)


@reference("multi_head_self_attention")
def multi_head_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads,
                              mask=None):
    """MultiHead(X) = concat(head_1, ..., head_H) W_O^T + b_O, head_h = Attention(X W_Q,h^T, X W_K,h^T, X W_V,h^T).

    x `(B, L, E)`; in_proj_weight `(3E, E)` stacks W_Q, W_K, W_V (each `(E, E)`), in_proj_bias `(3E,)` or None;
    out_proj_weight `(E, E)`, out_proj_bias `(E,)` or None; head h uses features h*E/H ... (h+1)*E/H - 1 of
    each projection; mask bool `(L, L)`, True = may attend -> `(B, L, E)`.
    Equals `nn.MultiheadAttention(E, num_heads, batch_first=True)` with those weights and `attn_mask=~mask`.
    """
    return self_attention_heads(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads,
                                mask)[0]


# ---------------------------------------------------------------------------------------------
# Demonstrations


def dot_product_spread(dims, n=4000, seed=0):
    """For q, k with independent N(0, 1) entries: the standard deviation of q.k for each d in `dims`."""
    g = torch.Generator().manual_seed(seed)
    spreads = []
    for d in dims:
        q, k = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
        spreads.append((q * k).sum(-1).std().item())                # (n,) dot products
    return spreads


def _random_weights(d, L, n, power, g):
    """Softmax weights `(n, L)` of one random query against L random keys, scores q.k / d**power."""
    q = torch.randn(n, 1, d, generator=g, dtype=torch.float64)
    k = torch.randn(n, L, d, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(-2, -1))[:, 0] / d ** power          # (n, 1, d) x (n, d, L) -> (n, L)
    return torch.softmax(scores, dim=-1)


def softmax_saturation(dims, L=16, n=500, power=0.5, seed=0):
    """Mean largest attention weight (1/L is uniform, 1 is one-hot) for random q, k with N(0, 1) entries.

    Scores are q.k / d**power: power 0 is unscaled, 0.5 divides by sqrt(d), 1 by d.
    """
    g = torch.Generator().manual_seed(seed)
    return [_random_weights(d, L, n, power, g).amax(-1).mean().item() for d in dims]


def softmax_gradient_size(dims, L=16, n=500, power=0.5, seed=0):
    """Mean Frobenius norm of the softmax Jacobian d weights / d scores = diag(a) - a a^T at random scores.

    Scores are q.k / d**power, as in `softmax_saturation`.
    """
    g = torch.Generator().manual_seed(seed)
    result = []
    for d in dims:
        a = _random_weights(d, L, n, power, g)                      # (n, L)
        jacobian = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]  # (n, L, L)
        result.append(jacobian.flatten(1).norm(dim=1).mean().item())
    return result


# ---------------------------------------------------------------------------------------------
# A tiny causal transformer (stable API: notebook 05 builds on it)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask, parameters laid out as in `nn.MultiheadAttention`.

    After each forward pass `last_weights` holds the attention weights `(B, H, L, L)` (detached).
    """

    def __init__(self, d_model, num_heads):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model = {d_model} is not divisible by num_heads = {num_heads}")
        self.num_heads = num_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)               # [W_Q; W_K; W_V] in one matrix
        self.out_proj = nn.Linear(d_model, d_model)
        self.last_weights = None

    def forward(self, x):
        """x `(B, L, d_model)` -> `(B, L, d_model)`; position t only sees positions 0..t."""
        mask = causal_mask.__wrapped__(x.shape[1]).to(x.device)      # (L, L)
        out, weights = self_attention_heads(x, self.in_proj.weight, self.in_proj.bias, self.out_proj.weight,
                                            self.out_proj.bias, self.num_heads, mask)
        self.last_weights = weights.detach()                         # (B, H, L, L)
        return out


class CausalTransformerBlock(nn.Module):
    """One pre-norm transformer block: x + Attention(LN(x)), then x + MLP(LN(x)); causal.

    CausalTransformerBlock(d_model, num_heads, d_ff=None, dropout=0.0); d_ff defaults to 4 d_model.
    forward(x `(B, L, d_model)`) -> `(B, L, d_model)`. `block.attention.last_weights` holds the last
    attention weights `(B, H, L, L)`.
    """

    def __init__(self, d_model, num_heads, d_ff=None, dropout=0.0):
        super().__init__()
        d_ff = d_ff or 4 * d_model
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.dropout(self.attention(self.norm1(x)))          # (B, L, d_model): mix information across positions
        return x + self.dropout(self.mlp(self.norm2(x)))             # (B, L, d_model): process each position alone


class TinyCausalTransformer(nn.Module):
    """Token embedding + sinusoidal positions, `num_layers` causal blocks, final LayerNorm, linear read-out.

    TinyCausalTransformer(vocab_size, d_model=32, num_heads=2, num_layers=2, max_len=64, d_ff=None, dropout=0.0);
    forward(ids `(B, L)` long, L <= max_len) -> logits `(B, L, vocab_size)`; logits[:, t] only depend on ids[:, :t+1].
    """

    def __init__(self, vocab_size, d_model=32, num_heads=2, num_layers=2, max_len=64, d_ff=None, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positional_encoding.__wrapped__(max_len, d_model),
                             persistent=False)                      # (max_len, d_model)
        self.blocks = nn.ModuleList(CausalTransformerBlock(d_model, num_heads, d_ff, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, vocab_size)

    def forward(self, ids):
        L = ids.shape[1]
        if L > self.positions.shape[0]:
            raise ValueError(f"sequence length {L} exceeds max_len = {self.positions.shape[0]}")
        x = self.embedding(ids) + self.positions[:L]                 # (B, L, d_model)
        for block in self.blocks:
            x = block(x)                                             # (B, L, d_model)
        return self.readout(self.norm(x))                            # (B, L, vocab_size)

    def attention_maps(self):
        """The last forward pass's attention weights, one `(B, H, L, L)` tensor per block."""
        return [block.attention.last_weights for block in self.blocks]


# ---------------------------------------------------------------------------------------------
# The toy task: reverse a sequence of digits


def reversal_batch(batch_size, n, vocab=10, generator=None):
    """Sequences `x_1 .. x_n | x_n .. x_1` of digits 0..vocab-1 with separator token `vocab`.

    Returns (inputs, targets), each `(batch_size, 2n)` long: inputs are the sequence without its last
    token, targets the sequence shifted by one, with -100 (ignored by cross_entropy) wherever the
    next token is still part of the random first half.
    """
    digits = torch.randint(0, vocab, (batch_size, n), generator=generator)   # (B, n)
    separator = torch.full((batch_size, 1), vocab)                            # (B, 1)
    sequence = torch.cat([digits, separator, digits.flip(1)], dim=1)         # (B, 2n + 1)
    inputs, targets = sequence[:, :-1], sequence[:, 1:].clone()               # (B, 2n) each
    targets[:, :n] = -100                                     # the next token is a random digit (or |)
    return inputs, targets


def reversal_accuracy(model, inputs, targets):
    """Fraction of predicted tokens right (teacher forcing), and fraction of sequences entirely right."""
    with torch.no_grad():
        predicted = model(inputs).argmax(-1)                         # (B, 2n)
    scored = targets != -100
    right = (predicted == targets) | ~scored
    return (right & scored).sum().item() / scored.sum().item(), right.all(dim=1).float().mean().item()


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block: tiny models are faster that way, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_reversal(model, n=8, vocab=10, steps=200, batch_size=64, lr=3e-3, seed=0, report_every=40):
    """Train `model` (ids -> logits) to reverse sequences of n digits with Adam; print compact progress.

    Returns a dict of lists: "step", "loss" (training loss at every step), and "report step",
    "token accuracy", "sequence accuracy" on a fixed held-out batch of 512 sequences at every report.
    """
    with single_thread():
        return _train_reversal(model, n, vocab, steps, batch_size, lr, seed, report_every)


def _train_reversal(model, n, vocab, steps, batch_size, lr, seed, report_every):
    g = torch.Generator().manual_seed(seed)
    held_out = reversal_batch(512, n, vocab, generator=torch.Generator().manual_seed(seed + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"step": [], "loss": [], "report step": [], "token accuracy": [], "sequence accuracy": []}
    for step in range(1, steps + 1):
        inputs, targets = reversal_batch(batch_size, n, vocab, generator=g)
        logits = model(inputs)                                       # (B, 2n, vocab + 1)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["step"].append(step)
        history["loss"].append(loss.item())
        if step % report_every == 0 or step == steps:
            tokens, sequences = reversal_accuracy(model, *held_out)
            history["report step"].append(step)
            history["token accuracy"].append(tokens)
            history["sequence accuracy"].append(sequences)
            print(f"  step {step:>4}: loss {loss.item():.3f}, held-out accuracy {tokens:.1%} of tokens, "
                  f"{sequences:.1%} of sequences")
    return history


# ---------------------------------------------------------------------------------------------
# A sentence with hand-made attention heads (for the explorer)

SENTENCE = "the cat sat on the mat because it was tired".split()
WORD_FEATURES = ["determiner", "noun", "verb", "preposition", "pronoun", "other", "animate", "constant"]
_WORD_TYPES = {"the": ["determiner"], "cat": ["noun", "animate"], "sat": ["verb"], "on": ["preposition"],
               "mat": ["noun"], "because": ["other"], "it": ["pronoun"], "was": ["verb"], "tired": ["other"]}
HEAD_NAMES = ["previous word", "who is the subject?", "content words"]


def shift_matrix(d, offset):
    """The `(d, d)` matrix R with R @ PE[p] = PE[p + offset] for every position p (d even).

    Each (sin, cos) pair of the sinusoidal encoding is a point on a circle turning at its own
    frequency w_i; moving `offset` positions is a rotation by the angle w_i * offset in that pair.
    """
    w = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)   # (d/2,) frequencies
    angle = w * offset
    c, s = torch.cos(angle), torch.sin(angle)
    R = torch.zeros(d, d, dtype=torch.float64)
    R[0::2, 0::2] = torch.diag(c)                                     # sin(a + b) = sin a cos b + cos a sin b
    R[0::2, 1::2] = torch.diag(s)
    R[1::2, 0::2] = torch.diag(-s)                                    # cos(a + b) = cos a cos b - sin a sin b
    R[1::2, 1::2] = torch.diag(c)
    return R.to(torch.get_default_dtype())


def sentence_heads(words=None, sharpness=4.0):
    """Embeddings of a sentence and the weights of three hand-made attention heads.

    Each word is embedded as [8 word features | sinusoidal position, 16 numbers]: E = 24, 3 heads of size 8.
    Head 0 "previous word": queries are positions shifted back by one (a rotation of the encoding),
    keys are positions. Head 1 "who is the subject?": verbs and pronouns ask for an animate noun.
    Head 2 "content words": every word asks for nouns and verbs. Values: the word features.
    Returns a dict with x `(1, L, 24)`, in_proj_weight `(72, 24)`, in_proj_bias `(72,)`, out_proj_weight
    `(24, 24)`, out_proj_bias `(24,)`, num_heads, words, head names.
    """
    words = words or SENTENCE
    n_feat, d_pos, hd = len(WORD_FEATURES), 16, 8
    E = n_feat + d_pos
    f = {name: i for i, name in enumerate(WORD_FEATURES)}
    features = torch.zeros(len(words), n_feat)
    for p, word in enumerate(words):
        for name in _WORD_TYPES.get(word, ["other"]) + ["constant"]:
            features[p, f[name]] = 1.0
    x = torch.cat([features, sinusoidal_positional_encoding.__wrapped__(len(words), d_pos)], dim=1)[None]  # (1, L, E)

    scale = sharpness * math.sqrt(hd)                                 # undo the 1/sqrt(hd) of the attention
    W_q, W_k, W_v = torch.zeros(3, E, E)                              # each (E, E): rows = output features
    # head 0 (rows 0..7): q = PE[p - 1] restricted to the 4 fastest frequencies, k = PE[j]
    W_q[0:8, n_feat:n_feat + 8] = 2 * scale * shift_matrix(d_pos, -1)[:8, :8]
    W_k[0:8, n_feat:n_feat + 8] = torch.eye(8)
    # head 1 (rows 8..15): verbs and pronouns query along one direction; animate nouns score +1, other words -1
    W_q[8, f["verb"]] = W_q[8, f["pronoun"]] = scale
    W_k[8, f["noun"]], W_k[8, f["animate"]], W_k[8, f["constant"]] = 1.0, 1.0, -1.0
    # head 2 (rows 16..23): every word queries (constant feature); nouns and verbs answer
    W_q[16, f["constant"]] = scale / 2
    W_k[16, f["noun"]] = W_k[16, f["verb"]] = 1.0
    for h in range(3):                                                # values: each head passes on the word features
        W_v[h * hd:(h + 1) * hd, :n_feat] = torch.eye(n_feat)
    return {"x": x, "in_proj_weight": torch.cat([W_q, W_k, W_v]), "in_proj_bias": torch.zeros(3 * E),
            "out_proj_weight": torch.eye(E), "out_proj_bias": torch.zeros(E), "num_heads": 3,
            "words": list(words), "head_names": list(HEAD_NAMES)}


def sentence_weights(demo, temperature=1.0):
    """The attention weights `(H, L, L)` of the hand-made heads of `sentence_heads()` at a temperature."""
    _, weights = self_attention_heads(demo["x"], demo["in_proj_weight"], demo["in_proj_bias"],
                                      demo["out_proj_weight"], demo["out_proj_bias"], demo["num_heads"],
                                      temperature=temperature)
    return weights[0]                                                # (H, L, L)
