"""Cases, forbidden calls and known mistakes for notebook 04 (self-attention from scratch)."""
import math

import torch
import torch.nn.functional as F

from .. import attention as ref
from ..grading import Exercise, ForbiddenByName, Variant, register
from .fc_local_conv import F32, F64, randint, randn

# ---------------------------------------------------------------------------------------------
# Forbidden: torch's attention ops, however they are reached

ATTENTION_NAMES = (r"scaled_dot_product|multi_head_attention|_native_multi_head|_triton_(multi_head|scaled_dot)"
                   r"|flash_attention|efficient_attention|cudnn_attention|fused_sdp|fused_attention|flex_attention"
                   r"|transformer_encoder_layer")
# With a dispatch mode active, F.scaled_dot_product_attention runs its math path, whose one
# telltale op is _safe_softmax; the fused paths (reached through nn.MultiheadAttention) keep their names.
ATTENTION_ATEN = ATTENTION_NAMES + r"|_safe_softmax"

ATTENTION_FORBIDDEN = ForbiddenByName(ATTENTION_NAMES, {
    F.scaled_dot_product_attention: "torch.nn.functional.scaled_dot_product_attention",
    F.multi_head_attention_forward: "torch.nn.functional.multi_head_attention_forward (nn.MultiheadAttention)",
    torch._native_multi_head_attention: "torch._native_multi_head_attention (nn.MultiheadAttention)",
})


def _unbox(fn):
    """The logic of a reference without its grading guard (wrong variants may call it outside grading)."""
    return getattr(fn, "__wrapped__", fn)


# ---------------------------------------------------------------------------------------------
# scaled_dot_product_attention


def _allowing_mask(g, *shape):
    """A random bool mask in which every row (last axis) allows at least one key."""
    mask = torch.rand(*shape, generator=g) < 0.6
    keep = torch.randint(0, shape[-1], (*shape[:-1], 1), generator=g)
    return mask.scatter(-1, keep, True)


def _sdpa_case(batch, Lq, Lk, d, dv, mask=None, dtype=F32, scale=1.0):
    """q (*batch, Lq, d), k (*batch, Lk, d), v (*batch, Lk, dv); mask: None, "causal", "padding", "random", "all"."""
    def build(g):
        q = randn(g, *batch, Lq, d, dtype=dtype) * scale
        k = randn(g, *batch, Lk, d, dtype=dtype) * scale
        v = randn(g, *batch, Lk, dv, dtype=dtype)
        if mask is None:
            return q, k, v
        if mask == "causal":
            m = torch.ones(Lq, Lk, dtype=torch.bool).tril()
        elif mask == "padding":  # each sequence of the batch has its own number of real keys; rows all-or-nothing
            lengths = torch.randint(1, Lk + 1, (batch[0],), generator=g)
            lengths[0] = Lk                                  # the first sequence has no padding: fully allowed rows
            m = (torch.arange(Lk)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, Lk)
        elif mask == "all":
            m = torch.ones(Lq, Lk, dtype=torch.bool)
        else:
            m = _allowing_mask(g, *batch, Lq, Lk)
            m[..., 0, :] = True                              # one fully allowed row
        return q, k, v, m
    return build


def _sdpa_random(g, dtype):
    batch = [randint(g, 1, 3)] + ([randint(g, 1, 3)] if randint(g, 0, 1) else [])
    Lq, Lk, d, dv = randint(g, 1, 6), randint(g, 1, 6), randint(g, 1, 6), randint(g, 1, 6)
    mask = [None, "random", "causal", "random"][randint(g, 0, 3)]
    if mask == "causal" and Lq > Lk:
        mask = "random"
    return _sdpa_case(batch, Lq, Lk, d, dv, mask, dtype)(g)


def _sdpa_variant(scale=lambda q, k, v: math.sqrt(q.shape[-1]), axis=-1, mask_mode="fill", after=None,
                  softmax=None, swap=False, return_scores=False):
    """A wrong attention: scores / scale(q, k, v), softmax over `axis`, mask applied as `mask_mode`."""
    def variant(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / scale(q, k, v)
        if mask is not None and mask_mode == "fill":
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask is not None and mask_mode == "inverted":
            scores = scores.masked_fill(mask, float("-inf"))
        elif mask is not None and mask_mode == "zero":
            scores = scores.masked_fill(~mask, 0.0)
        weights = (softmax or (lambda s: torch.softmax(s, dim=axis)))(scores)
        if mask is not None and mask_mode == "after":
            weights = weights * mask
        if after is not None:
            weights = after(weights, q)
        if return_scores:
            weights = scores
        out = weights @ v
        return (weights, out) if swap else (out, weights)
    return variant


def _naive_softmax(scores):
    e = torch.exp(scores)
    return e / e.sum(-1, keepdim=True)


register(Exercise(
    id="scaled_dot_product_attention",
    cases={
        "batch 2, Lq = Lk = 4, d = dv = 3, no mask": _sdpa_case([2], 4, 4, 3, 3),
        "Lq = 3, Lk = 5, d = 4, dv = 2, no mask": _sdpa_case([2], 3, 5, 4, 2),
        "batch and heads (2, 3), L = 4, d = 5": _sdpa_case([2, 3], 4, 4, 5, 5),
        "float64, Lq = 2, Lk = 6, d = 3, dv = 5": _sdpa_case([3], 2, 6, 3, 5, dtype=F64),
        "unbatched q (3, 4), k (5, 4), v (5, 2)": _sdpa_case([], 3, 5, 4, 2),
        "causal mask (5, 5), batch 2": _sdpa_case([2], 5, 5, 4, 3, "causal"),
        "padding mask (B, 1, Lk), first sequence unpadded": _sdpa_case([3], 4, 6, 3, 2, "padding"),
        "random mask (B, H, Lq, Lk), Lq != Lk, one row fully allowed": _sdpa_case([2, 2], 3, 5, 4, 3, "random"),
        "mask with every entry True": _sdpa_case([2], 4, 4, 3, 3, "all"),
        "a single key (Lk = 1)": _sdpa_case([2], 4, 1, 3, 2),
        "d = 1": _sdpa_case([2], 3, 4, 1, 2),
        "large scores (needs a stable softmax)": _sdpa_case([2], 3, 4, 4, 2, scale=12.0),
        "float64, heads and random mask": _sdpa_case([2, 3], 4, 3, 2, 4, "random", dtype=F64),
        "batch 3, Lq = 6, Lk = 2, d = 5, dv = 1": _sdpa_case([3], 6, 2, 5, 1),
        "float64, batch and heads (2, 2), L = 5, d = 2": _sdpa_case([2, 2], 5, 5, 2, 3, dtype=F64),
    },
    parts={
        "basic": {"visible": ["batch 2, Lq = Lk = 4, d = dv = 3, no mask", "Lq = 3, Lk = 5, d = 4, dv = 2, no mask"],
                  "hidden": ["batch and heads (2, 3), L = 4, d = 5", "float64, Lq = 2, Lk = 6, d = 3, dv = 5",
                             "unbatched q (3, 4), k (5, 4), v (5, 2)", "batch 3, Lq = 6, Lk = 2, d = 5, dv = 1",
                             "float64, batch and heads (2, 2), L = 5, d = 2"], "random": 0},
        "edge": {"visible": ["causal mask (5, 5), batch 2"],
                 "hidden": ["padding mask (B, 1, Lk), first sequence unpadded",
                            "random mask (B, H, Lq, Lk), Lq != Lk, one row fully allowed", "mask with every entry True",
                            "a single key (Lk = 1)", "d = 1", "large scores (needs a stable softmax)",
                            "float64, heads and random mask"], "random": 8},
    },
    random_case=_sdpa_random,
    forbidden=ATTENTION_FORBIDDEN,
    forbidden_aten=ATTENTION_ATEN,
    variants=[
        Variant(_sdpa_variant(scale=lambda q, k, v: 1.0),
                "the scores must be scaled: divide q k^T by sqrt(d), where d = q.shape[-1], before the softmax."),
        Variant(_sdpa_variant(scale=lambda q, k, v: q.shape[-1]),
                "scale by the square root of d, not by d itself: the spread of q.k grows like sqrt(d)."),
        Variant(_sdpa_variant(scale=lambda q, k, v: math.sqrt(v.shape[-1])),
                "d is the size of the queries and keys (q.shape[-1]); the values' size dv plays no part in the "
                "scaling."),
        Variant(_sdpa_variant(scale=lambda q, k, v: math.sqrt(k.shape[-2])),
                "divide by sqrt(d), the length of each query and key vector, not by the square root of the "
                "number of keys."),
        Variant(_sdpa_variant(axis=-2), "the softmax runs over the keys (the last axis), so that each query's "
                                        "weights sum to 1; yours sum to 1 down each column."),
        Variant(_sdpa_variant(mask_mode="after"),
                "apply the mask before the softmax, by setting blocked scores to -inf; zeroing weights after it "
                "leaves rows that no longer sum to 1."),
        Variant(_sdpa_variant(mask_mode="inverted"),
                "True in the mask means 'may attend' (F.scaled_dot_product_attention's convention): you blocked "
                "exactly the allowed keys (nn.MultiheadAttention's boolean masks mean the opposite)."),
        Variant(_sdpa_variant(mask_mode="zero"),
                "a blocked score must become -inf (weight exp(-inf) = 0), not 0: a score of 0 still gets the "
                "weight exp(0) = 1 before normalising."),
        Variant(_sdpa_variant(mask_mode="ignore"), "the mask was ignored: set the scores of blocked keys "
                                                   "(mask False) to -inf before the softmax."),
        Variant(_sdpa_variant(scale=lambda q, k, v: 1.0, after=lambda w, q: w / math.sqrt(q.shape[-1])),
                "divide the scores by sqrt(d) before the softmax, not the weights after it."),
        Variant(_sdpa_variant(softmax=_naive_softmax),
                "exp of a large score overflows (inf / inf = nan): subtract each row's maximum before exp, or "
                "use torch.softmax, which does."),
        Variant(_sdpa_variant(return_scores=True),
                "the weights to return (and to multiply v with) are the softmax of the scores, rows summing to 1, "
                "not the raw scores."),
        Variant(_sdpa_variant(swap=True), "return (out, weights), in that order."),
    ],
))


# ---------------------------------------------------------------------------------------------
# causal_mask


def _tril(L, diagonal=0):
    return torch.ones(L, L, dtype=torch.bool).tril(diagonal)


register(Exercise(
    id="causal_mask",
    cases={f"L = {L}": (lambda L: lambda g: (L,))(L) for L in (1, 2, 4, 7, 16, 33)},
    parts={
        "basic": {"visible": ["L = 4"], "hidden": ["L = 7", "L = 16"], "random": 0},
        "edge": {"visible": ["L = 1"], "hidden": ["L = 2", "L = 33"], "random": 0},
    },
    variants=[
        Variant(lambda L: _tril(L).T, "True marks what a position MAY attend to: position i sees j <= i, on and "
                                      "below the diagonal. Yours marks the present and the future."),
        Variant(lambda L: _tril(L, -1), "a position may attend to itself: the diagonal is True."),
        Variant(lambda L: ~_tril(L), "that is nn.MultiheadAttention's convention (True = blocked). Here True means "
                                     "'may attend': True on and below the diagonal."),
        Variant(lambda L: _tril(L).float(), "a mask is a bool tensor (dtype=torch.bool), not 0/1 floats."),
        Variant(lambda L: _tril(L).long(), "a mask is a bool tensor (dtype=torch.bool), not 0/1 integers."),
        Variant(lambda L: torch.zeros(L, L).masked_fill(~_tril(L), float("-inf")),
                "that is an additive float mask (0 and -inf, as nn.Transformer.generate_square_subsequent_mask "
                "makes); this course's masks are bool, True where attending is allowed."),
        Variant(lambda L: _tril(L)[None], "return a 2-D (L, L) mask, without a batch dimension."),
    ],
))


# ---------------------------------------------------------------------------------------------
# sinusoidal_positional_encoding


def _pe_variant(frequency=lambda two_i, d: 10000 ** (two_i / d), first=torch.sin, second=torch.cos, start=0,
                layout="interleave", per_column=False, dtype=None, transpose=False):
    """A wrong positional encoding, computed in float64."""
    def variant(L, d):
        p = torch.arange(start, start + L, dtype=F64)[:, None]                     # (L, 1)
        if per_column:                                                             # column j uses exponent j/d
            cols = torch.arange(d, dtype=F64)[None, :]
            angles = p / frequency(cols, d)                                        # (L, d)
            pe = torch.where(torch.arange(d) % 2 == 0, first(angles), second(angles))
        else:
            angles = p / frequency(torch.arange(0, d, 2, dtype=F64)[None, :], d)   # (L, d/2)
            if layout == "interleave":
                pe = torch.stack([first(angles), second(angles)], dim=-1).reshape(L, d)
            else:                                                                  # all sines, then all cosines
                pe = torch.cat([first(angles), second(angles)], dim=-1)
        pe = pe.to(dtype or torch.get_default_dtype())
        return pe.T if transpose else pe
    return variant


register(Exercise(
    id="sinusoidal_positional_encoding",
    cases={
        "L = 6, d = 4": lambda g: (6, 4),
        "L = 50, d = 16": lambda g: (50, 16),
        "L = 10, d = 32": lambda g: (10, 32),
        "d = 2 (one sine and one cosine)": lambda g: (7, 2),
        "L = 1, d = 8": lambda g: (1, 8),
        "L = 128, d = 6": lambda g: (128, 6),
        "L = 64, d = 128": lambda g: (64, 128),
    },
    parts={
        "basic": {"visible": ["L = 6, d = 4"], "hidden": ["L = 50, d = 16", "L = 10, d = 32"], "random": 0},
        "edge": {"visible": ["d = 2 (one sine and one cosine)"],
                 "hidden": ["L = 1, d = 8", "L = 128, d = 6", "L = 64, d = 128"], "random": 0},
    },
    variants=[
        Variant(_pe_variant(first=torch.cos, second=torch.sin),
                "even columns 2i hold the sine and odd columns 2i+1 the cosine; yours are the other way round."),
        Variant(_pe_variant(layout="concatenate"),
                "sines and cosines alternate column by column (sin, cos, sin, cos, ...); you put all the sines "
                "first and all the cosines after them."),
        Variant(_pe_variant(per_column=True),
                "columns 2i and 2i+1 share one frequency, 1 / 10000^(2i/d); you gave the cosine column its own "
                "exponent (2i+1)/d."),
        Variant(_pe_variant(frequency=lambda two_i, d: 10000 ** (two_i / 2 / d)),
                "the exponent is 2i/d, where 2i is the even column index (0, 2, 4, ...); you used i/d."),
        Variant(_pe_variant(frequency=lambda two_i, d: 10000 ** (-two_i / d)),
                "divide the position by 10000^(2i/d) (slower waves in later columns); you multiplied by it."),
        Variant(_pe_variant(start=1), "positions start at 0: row p = 0 is sin(0) = 0, cos(0) = 1."),
        Variant(_pe_variant(dtype=F64),
                "a function with no tensor input returns the default float dtype (torch.get_default_dtype(), "
                "float32 here): convert the result with .to(torch.get_default_dtype()), or avoid numpy's float64."),
        Variant(_pe_variant(transpose=True), "rows are positions and columns are features: return (L, d), "
                                             "not (d, L)."),
    ],
))


# ---------------------------------------------------------------------------------------------
# multi_head_self_attention


def _mha_case(B, L, E, H, bias=True, mask=None, dtype=F32):
    """x (B, L, E) and nn.MultiheadAttention-shaped weights; mask None, "causal" or "random"."""
    def build(g):
        x = randn(g, B, L, E, dtype=dtype)
        in_w = randn(g, 3 * E, E, dtype=dtype) / math.sqrt(E)
        in_b = randn(g, 3 * E, dtype=dtype) * 0.3 if bias else None
        out_w = randn(g, E, E, dtype=dtype) / math.sqrt(E)
        out_b = randn(g, E, dtype=dtype) * 0.3 if bias else None
        args = (x, in_w, in_b, out_w, out_b, H)
        if mask == "causal":
            return (*args, torch.ones(L, L, dtype=torch.bool).tril())
        if mask == "random":
            m = _allowing_mask(g, L, L)
            m[-1] = True                                     # the last row fully allowed
            return (*args, m)
        return args
    return build


def _mha_random(g, dtype):
    H, hd = randint(g, 1, 3), randint(g, 1, 3)
    return _mha_case(randint(g, 1, 3), randint(g, 1, 6), H * hd, H, bool(randint(g, 0, 1)),
                     [None, "causal", "random"][randint(g, 0, 2)], dtype)(g)


def _mha_variant(split="right", merge="right", scale="head", order=(0, 1, 2), transpose_weights=True,
                 out_proj=True, mask_mode="right", single_head=False, axis=-1):
    """A wrong multi-head self-attention, one choice changed."""
    def variant(x, in_w, in_b, out_w, out_b, num_heads, mask=None):
        B, L, E = x.shape
        H = 1 if single_head else num_heads
        hd = E // H
        W = in_w if transpose_weights else in_w.reshape(3, E, E).transpose(1, 2).reshape(3 * E, E)
        qkv = F.linear(x, W, in_b).chunk(3, dim=-1)
        q, k, v = (qkv[i] for i in order)

        def heads(t):
            if split == "no transpose":
                return t.reshape(B, H, L, hd)
            if split == "interleaved":
                return t.reshape(B, L, hd, H).permute(0, 3, 1, 2)
            return t.reshape(B, L, H, hd).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(E if scale == "model" else hd)
        if mask is not None and mask_mode != "ignore":
            scores = scores.masked_fill(mask if mask_mode == "inverted" else ~mask, float("-inf"))
        out = torch.softmax(scores, dim=axis) @ v                # (B, H, L, hd)
        out = out.reshape(B, L, E) if merge == "no transpose" else out.transpose(1, 2).reshape(B, L, E)
        return F.linear(out, out_w, out_b) if out_proj else out
    return variant


register(Exercise(
    id="multi_head_self_attention",
    cases={
        "B = 2, L = 5, E = 8, 2 heads, no mask": _mha_case(2, 5, 8, 2),
        "causal mask, L = 6, E = 8, 4 heads": _mha_case(2, 6, 8, 4, mask="causal"),
        "one head, E = 6": _mha_case(2, 4, 6, 1),
        "float64, E = 6, 3 heads": _mha_case(2, 5, 6, 3, dtype=F64),
        "B = 1, L = 7, E = 12, 3 heads": _mha_case(1, 7, 12, 3),
        "no biases (None)": _mha_case(2, 4, 8, 2, bias=False),
        "head size 1 (E = num_heads = 4)": _mha_case(2, 5, 4, 4),
        "a single position (L = 1)": _mha_case(3, 1, 6, 2),
        "random mask, last row fully allowed": _mha_case(2, 5, 6, 2, mask="random"),
        "float64, causal mask, no biases": _mha_case(2, 4, 6, 2, bias=False, mask="causal", dtype=F64),
        "float64, B = 3, L = 3, E = 4, 2 heads, no biases": _mha_case(3, 3, 4, 2, bias=False, dtype=F64),
        "B = 2, L = 8, E = 10, 5 heads": _mha_case(2, 8, 10, 5),
    },
    parts={
        "basic": {"visible": ["B = 2, L = 5, E = 8, 2 heads, no mask"],
                  "hidden": ["one head, E = 6", "float64, E = 6, 3 heads", "B = 1, L = 7, E = 12, 3 heads",
                             "float64, B = 3, L = 3, E = 4, 2 heads, no biases", "B = 2, L = 8, E = 10, 5 heads"],
                  "random": 0},
        "edge": {"visible": ["causal mask, L = 6, E = 8, 4 heads"],
                 "hidden": ["no biases (None)", "head size 1 (E = num_heads = 4)", "a single position (L = 1)",
                            "random mask, last row fully allowed", "float64, causal mask, no biases"], "random": 6},
    },
    random_case=_mha_random,
    forbidden=ATTENTION_FORBIDDEN,
    forbidden_aten=ATTENTION_ATEN,
    variants=[
        Variant(_mha_variant(split="no transpose"),
                "split the features, not the positions: reshape (B, L, E) to (B, L, H, E/H), then transpose to "
                "(B, H, L, E/H). Reshaping straight to (B, H, L, E/H) mixes positions between heads."),
        Variant(_mha_variant(split="interleaved"),
                "head h owns the contiguous features h*E/H ... (h+1)*E/H - 1 of each projection (as in "
                "nn.MultiheadAttention), not every H-th feature: reshape to (B, L, H, E/H)."),
        Variant(_mha_variant(merge="no transpose"),
                "to put the heads back side by side, transpose (B, H, L, E/H) to (B, L, H, E/H) before reshaping "
                "to (B, L, E)."),
        Variant(_mha_variant(scale="model"),
                "each head scales its scores by the square root of its own size E / num_heads, not of E."),
        Variant(_mha_variant(order=(1, 0, 2)),
                "in_proj_weight stacks W_Q, W_K, W_V in that order: rows 0..E-1 make the queries, E..2E-1 the keys."),
        Variant(_mha_variant(order=(0, 2, 1)),
                "in_proj_weight stacks W_Q, W_K, W_V in that order: the keys come from rows E..2E-1 and the values "
                "from rows 2E..3E-1."),
        Variant(_mha_variant(transpose_weights=False),
                "a projection computes x W^T + b, as nn.Linear does (F.linear(x, W, b)); multiply by the "
                "transposed weight blocks."),
        Variant(_mha_variant(out_proj=False),
                "finish with the output projection: concat(heads) out_proj_weight^T + out_proj_bias."),
        Variant(_mha_variant(mask_mode="inverted"),
                "True in our mask means 'may attend'. nn.MultiheadAttention's boolean attn_mask means the opposite "
                "(True = blocked): you applied it with that meaning."),
        Variant(_mha_variant(mask_mode="ignore"), "the mask was ignored: blocked scores (mask False) must be set "
                                                  "to -inf before the softmax, in every head."),
        Variant(_mha_variant(single_head=True),
                "split the projections into num_heads heads of size E / num_heads and attend in each separately; "
                "you attended once with the full E features."),
        Variant(_mha_variant(axis=-2), "the softmax runs over the keys (the last axis of the scores)."),
    ],
))
