"""The notebook-04 grading checks: right answers pass however written, wrong ones fail with the right message."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import attention as A
from course_utils.grading import EXERCISES
from grading_helpers import failure_message, passes_everything, wrong_variant_tests

IDS = ["scaled_dot_product_attention", "causal_mask", "sinusoidal_positional_encoding", "multi_head_self_attention"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_logic_passes(exercise_id):
    passes_everything(EXERCISES[exercise_id].reference.__wrapped__, exercise_id)


# ---------------------------------------------------------------------------------------------
# Correct implementations in other styles


def sdpa_loops(q, k, v, mask=None):
    """One query at a time, over flattened leading dimensions, with a large negative fill instead of -inf."""
    *batch, Lq, d = q.shape
    Lk, dv = k.shape[-2], v.shape[-1]
    full_mask = torch.ones(*batch, Lq, Lk, dtype=torch.bool) if mask is None else mask.expand(*batch, Lq, Lk)
    qf, kf, vf, mf = q.reshape(-1, Lq, d), k.reshape(-1, Lk, d), v.reshape(-1, Lk, dv), full_mask.reshape(-1, Lq, Lk)
    out = torch.zeros(qf.shape[0], Lq, dv, dtype=q.dtype)
    weights = torch.zeros(qf.shape[0], Lq, Lk, dtype=q.dtype)
    for b in range(qf.shape[0]):
        for i in range(Lq):
            scores = torch.stack([qf[b, i] @ kf[b, j] for j in range(Lk)]) / math.sqrt(d)
            scores = torch.where(mf[b, i], scores, torch.tensor(-1e9, dtype=q.dtype))
            w = torch.exp(scores - scores.max())
            weights[b, i] = w / w.sum()
            out[b, i] = weights[b, i] @ vf[b]
    return out.reshape(*batch, Lq, dv), weights.reshape(*batch, Lq, Lk)


def sdpa_float64_einsum(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q.double(), k.double()) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return torch.einsum("...qk,...kv->...qv", weights, v.double()).to(q.dtype), weights.to(q.dtype)


def sdpa_numpy(q, k, v, mask=None):
    qn, kn, vn = q.numpy(), k.numpy(), v.numpy()
    scores = qn @ np.swapaxes(kn, -1, -2) / np.sqrt(qn.shape[-1])
    if mask is not None:
        scores = np.where(mask.numpy(), scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    return torch.from_numpy(weights @ vn).to(q.dtype), torch.from_numpy(weights).to(q.dtype)


def causal_loops(L):
    return torch.tensor([[j <= i for j in range(L)] for i in range(L)], dtype=torch.bool).reshape(L, L)


def pe_loops(L, d):
    pe = torch.zeros(L, d)
    for p in range(L):
        for i in range(0, d, 2):
            pe[p, i] = math.sin(p / 10000 ** (i / d))
            pe[p, i + 1] = math.cos(p / 10000 ** (i / d))
    return pe


def pe_tutorial(L, d):
    """The float32 recipe of the PyTorch tutorials: exp/log frequencies, strided assignment."""
    position = torch.arange(L).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = torch.zeros(L, d)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def pe_numpy(L, d):
    angles = np.arange(L)[:, None] / np.power(10000, np.arange(0, d, 2)[None, :] / d)
    return torch.from_numpy(np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(L, d)).to(
        torch.get_default_dtype())


def mha_head_loop(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    """Head by head, with slices of the weight matrices, concatenating at the end."""
    E = x.shape[-1]
    hd = E // num_heads
    bias = in_proj_bias if in_proj_bias is not None else torch.zeros(3 * E, dtype=x.dtype)
    W_q, W_k, W_v = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    b_q, b_k, b_v = bias[:E], bias[E:2 * E], bias[2 * E:]
    heads = []
    for h in range(num_heads):
        rows = slice(h * hd, (h + 1) * hd)
        q = x @ W_q[rows].T + b_q[rows]
        k = x @ W_k[rows].T + b_k[rows]
        v = x @ W_v[rows].T + b_v[rows]
        heads.append(sdpa_float64_einsum(q, k, v, mask)[0])
    out = torch.cat(heads, dim=-1) @ out_proj_weight.T
    return out + out_proj_bias if out_proj_bias is not None else out


def mha_einsum(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    B, L, E = x.shape
    qkv = F.linear(x, in_proj_weight, in_proj_bias).view(B, L, 3, num_heads, E // num_heads)
    q, k, v = qkv.unbind(dim=2)                                     # (B, L, H, hd) each
    scores = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(E // num_heads)
    if mask is not None:
        scores = scores.masked_fill(~mask, -torch.inf)
    out = torch.einsum("bhlm,bmhd->blhd", scores.softmax(-1), v).reshape(B, L, E)
    return F.linear(out, out_proj_weight, out_proj_bias)


CORRECT = [("scaled_dot_product_attention", sdpa_loops), ("scaled_dot_product_attention", sdpa_float64_einsum),
           ("scaled_dot_product_attention", sdpa_numpy),
           ("causal_mask", causal_loops), ("causal_mask", lambda L: torch.tril(torch.ones(L, L)).bool()),
           ("causal_mask", lambda L: torch.from_numpy(np.tri(L, dtype=bool))),
           ("sinusoidal_positional_encoding", pe_loops), ("sinusoidal_positional_encoding", pe_tutorial),
           ("sinusoidal_positional_encoding", pe_numpy),
           ("multi_head_self_attention", mha_head_loop), ("multi_head_self_attention", mha_einsum)]


@pytest.mark.parametrize("exercise_id, fn", CORRECT, ids=[f"{e}-{i}" for i, (e, _) in enumerate(CORRECT)])
def test_other_correct_implementations_pass(exercise_id, fn):
    passes_everything(fn, exercise_id)


# ---------------------------------------------------------------------------------------------
# Wrong implementations


def sdpa_with(scale=lambda q: math.sqrt(q.shape[-1]), axis=-1, mask_fill="before", softmax=None):
    def fn(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / scale(q)
        if mask is not None and mask_fill == "before":
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask is not None and mask_fill == "inverted":
            scores = scores.masked_fill(mask, float("-inf"))
        elif mask is not None and mask_fill == "zero":
            scores = scores * mask
        weights = softmax(scores) if softmax else scores.softmax(dim=axis)
        if mask is not None and mask_fill == "after":
            weights = weights.masked_fill(~mask, 0.0)
        return weights @ v, weights
    return fn


def naive_softmax(scores):
    return scores.exp() / scores.exp().sum(-1, keepdim=True)


def torch_sdpa(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out, torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)


def sdpa_through_mha_module(q, k, v, mask=None):
    """A one-head nn.MultiheadAttention with identity projections: still forbidden."""
    d = q.shape[-1]
    mha = nn.MultiheadAttention(d, 1, batch_first=True, bias=False, dtype=q.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(d, dtype=q.dtype).repeat(3, 1))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=q.dtype))
    return mha(q, k, v)


def pe_with(first=torch.sin, second=torch.cos, exponent=lambda two_i, d: two_i / d, start=0, concat=False):
    def fn(L, d):
        p = torch.arange(start, start + L, dtype=torch.float64)[:, None]
        two_i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
        angles = p / 10000 ** exponent(two_i, d)
        parts = [first(angles), second(angles)]
        pe = torch.cat(parts, dim=1) if concat else torch.stack(parts, dim=-1).reshape(L, d)
        return pe.float()
    return fn


def mha_with(split="right", scale_by="head", out_proj=True, invert_mask=False, order=(0, 1, 2)):
    def fn(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
        B, L, E = x.shape
        hd = E // num_heads
        parts = F.linear(x, in_proj_weight, in_proj_bias).chunk(3, dim=-1)
        q, k, v = (parts[i] for i in order)
        if split == "right":
            q, k, v = (t.view(B, L, num_heads, hd).transpose(1, 2) for t in (q, k, v))
        else:
            q, k, v = (t.reshape(B, num_heads, L, hd) for t in (q, k, v))
        if mask is not None:
            mask = mask if invert_mask else ~mask
        scale = math.sqrt(hd if scale_by == "head" else E)
        scores = q @ k.transpose(-2, -1) / scale
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, E)
        return F.linear(out, out_proj_weight, out_proj_bias) if out_proj else out
    return fn


def mha_nn(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    E = x.shape[-1]
    mha = nn.MultiheadAttention(E, num_heads, batch_first=True, bias=in_proj_bias is not None, dtype=x.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(in_proj_weight)
        mha.out_proj.weight.copy_(out_proj_weight)
        if in_proj_bias is not None:
            mha.in_proj_bias.copy_(in_proj_bias)
            mha.out_proj.bias.copy_(out_proj_bias)
        return mha(x, x, x, attn_mask=None if mask is None else ~mask)[0]


def mha_per_head_torch_sdpa(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    B, L, E = x.shape
    q, k, v = (t.view(B, L, num_heads, -1).transpose(1, 2)
               for t in F.linear(x, in_proj_weight, in_proj_bias).chunk(3, dim=-1))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, L, E)
    return F.linear(out, out_proj_weight, out_proj_bias)


WRONG = {
    "scaled_dot_product_attention": [
        (sdpa_with(scale=lambda q: 1.0), "divide q k^T by sqrt(d)"),
        (sdpa_with(scale=lambda q: q.shape[-1]), "not by d itself"),
        (sdpa_with(axis=-2), "softmax runs over the keys"),
        (sdpa_with(mask_fill="after"), "apply the mask before the softmax"),
        (sdpa_with(mask_fill="inverted"), "True in the mask means 'may attend'"),
        (sdpa_with(mask_fill="zero"), "not 0"),
        (sdpa_with(mask_fill="ignored"), "the mask was ignored"),
        (sdpa_with(softmax=naive_softmax), "subtract each row's maximum"),
        (lambda q, k, v, mask=None: sdpa_float64_einsum(q, k, v, mask)[::-1], "(out, weights), in that order"),
        (lambda q, k, v, mask=None: (sdpa_float64_einsum(q, k, v, mask)[0], None), "should be a torch.Tensor"),
        (torch_sdpa, "torch.nn.functional.scaled_dot_product_attention"),
        (lambda q, k, v, mask=None: (torch.ops.aten.scaled_dot_product_attention(q, k, v, attn_mask=mask), None),
         "torch.ops.aten.scaled_dot_product_attention"),
        (sdpa_through_mha_module, "nn.MultiheadAttention"),
        (lambda q, k, v, mask=None: A.scaled_dot_product_attention(q, k, v, mask), "course's reference"),
    ],
    "causal_mask": [
        (lambda L: torch.ones(L, L, dtype=torch.bool).triu(), "Yours marks the present and the future"),
        (lambda L: torch.ones(L, L, dtype=torch.bool).tril(-1), "may attend to itself"),
        (lambda L: torch.ones(L, L, dtype=torch.bool).triu(1), "nn.MultiheadAttention's convention"),
        (lambda L: torch.ones(L, L).tril(), "not 0/1 floats"),
        (lambda L: nn.Transformer.generate_square_subsequent_mask(L), "additive float mask"),
        (lambda L: torch.ones(L, L, dtype=torch.bool).tril()[None], "without a batch dimension"),
        (lambda L: A.causal_mask(L), "course's reference"),
    ],
    "sinusoidal_positional_encoding": [
        (pe_with(first=torch.cos, second=torch.sin), "the other way round"),
        (pe_with(concat=True), "all the sines first"),
        (pe_with(exponent=lambda two_i, d: two_i / 2 / d), "you used i/d"),
        (pe_with(exponent=lambda two_i, d: -two_i / d), "you multiplied by it"),
        (pe_with(start=1), "positions start at 0"),
        (lambda L, d: pe_with()(L, d).double(), "default float dtype"),
        (lambda L, d: pe_with()(L, d).T, "not (d, L)"),
        (lambda L, d: A.sinusoidal_positional_encoding(L, d), "course's reference"),
    ],
    "multi_head_self_attention": [
        (mha_with(split="wrong"), "split the features, not the positions"),
        (mha_with(scale_by="model"), "its own size E / num_heads"),
        (mha_with(out_proj=False), "output projection"),
        (mha_with(invert_mask=True), "nn.MultiheadAttention's boolean attn_mask means the opposite"),
        (mha_with(order=(1, 0, 2)), "rows 0..E-1 make the queries"),
        (lambda x, w, b, ow, ob, H, mask=None: mha_with()(x, w, b, ow, ob, 1, mask), "attend in each separately"),
        (mha_nn, "torch.nn.functional.multi_head_attention_forward (nn.MultiheadAttention)"),
        (mha_per_head_torch_sdpa, "torch.nn.functional.scaled_dot_product_attention"),
        (lambda *args, **kwargs: A.multi_head_self_attention(*args, **kwargs), "course's reference"),
    ],
}


test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation = \
    wrong_variant_tests(IDS, WRONG)


def test_a_mutating_implementation_fails():
    def scaled_in_place(q, k, v, mask=None):
        q /= math.sqrt(q.shape[-1])
        weights = (q @ k.transpose(-2, -1)).softmax(-1)
        return weights @ v, weights
    assert "changed its input tensors in place" in failure_message(scaled_in_place, "scaled_dot_product_attention")


def test_an_unfinished_exercise_says_so():
    def stub(L):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError, match="not written yet"):
        passes_everything(stub, "causal_mask")
