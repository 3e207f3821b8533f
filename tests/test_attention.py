"""The notebook-04 references against F.scaled_dot_product_attention, nn.MultiheadAttention, numpy and closed forms."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import attention as A

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)


def numpy_attention(q, k, v, mask=None):
    """Float64 numpy oracle: softmax over the keys of q k^T / sqrt(d), blocked keys removed."""
    q, k, v = (t.double().numpy() for t in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask.numpy(), scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    weights = e / e.sum(-1, keepdims=True)
    return weights @ v, weights


def masks(Lq, Lk, batch):
    g = torch.Generator().manual_seed(Lq * 10 + Lk)
    random = torch.rand(*batch, Lq, Lk, generator=g) < 0.5
    random[..., 0] = True                                         # every row allows key 0
    return {"none": None, "causal": torch.ones(Lq, Lk, dtype=torch.bool).tril(), "random": random,
            "padding": (torch.arange(Lk) < max(Lk - 1, 1))[None, :].expand(Lq, Lk)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [((2,), 4, 4, 3, 3), ((2, 3), 3, 5, 4, 2), ((), 2, 6, 5, 7), ((1,), 1, 1, 1, 1)])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "random", "padding"])
def test_attention_matches_torch_and_numpy(dtype, shape, mask_kind):
    batch, Lq, Lk, d, dv = shape
    if mask_kind == "causal" and Lq > Lk:
        pytest.skip("a causal mask needs Lq <= Lk for every row to allow a key")
    torch.manual_seed(0)
    q, k, v = torch.randn(*batch, Lq, d, dtype=dtype), torch.randn(*batch, Lk, d, dtype=dtype), \
        torch.randn(*batch, Lk, dv, dtype=dtype)
    mask = masks(Lq, Lk, batch)[mask_kind]
    out, weights = A.scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **tol(dtype))
    expected_out, expected_weights = numpy_attention(q, k, v, mask)
    torch.testing.assert_close(out, torch.from_numpy(expected_out).to(dtype), **tol(dtype))
    torch.testing.assert_close(weights, torch.from_numpy(expected_weights).to(dtype), **tol(dtype))
    assert weights.dtype == out.dtype == dtype


def test_attention_weights_are_rows_summing_to_one_and_zero_where_blocked():
    q, k, v = torch.randn(3, 4, 5), torch.randn(3, 6, 5), torch.randn(3, 6, 2)
    mask = masks(4, 6, (3,))["random"]
    _, weights = A.scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    assert (weights[~mask] == 0).all()


def test_attention_is_stable_for_large_scores_and_leaves_inputs_alone():
    q, k, v = 50 * torch.randn(2, 3, 4), 50 * torch.randn(2, 5, 4), torch.randn(2, 5, 3)
    copies = [t.clone() for t in (q, k, v)]
    out, _ = A.scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    for before, after in zip(copies, (q, k, v)):
        assert torch.equal(before, after)


def test_fully_masked_row_gives_nan_with_minus_infinity():
    q, k, v = torch.randn(2, 3), torch.randn(4, 3), torch.randn(4, 2)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1] = False
    out, _ = A.attention(q, k, v, mask)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()


def test_temperature_divides_the_scores():
    q, k, v = torch.randn(3, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64), \
        torch.randn(5, 2, dtype=torch.float64)
    out, weights = A.attention(q, k, v, temperature=2.0)
    expected = torch.softmax(q @ k.T / (2.0 * 2.0), dim=-1)
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("L", [1, 2, 5, 16])
def test_causal_mask_matches_tril_and_nn_transformer(L):
    mask = A.causal_mask(L)
    assert mask.dtype == torch.bool and mask.shape == (L, L)
    assert torch.equal(mask, torch.tril(torch.ones(L, L)).bool())
    # nn.Transformer's additive mask: 0 where attending is allowed, -inf where it is not
    assert torch.equal(mask, nn.Transformer.generate_square_subsequent_mask(L) == 0)


@pytest.mark.parametrize("L, d", [(1, 2), (6, 4), (50, 16), (128, 64)])
def test_positional_encoding_matches_the_formula(L, d):
    pe = A.sinusoidal_positional_encoding(L, d)
    assert pe.shape == (L, d) and pe.dtype == torch.get_default_dtype()
    expected = np.zeros((L, d))
    for p in range(L):
        for i in range(d // 2):
            expected[p, 2 * i] = math.sin(p / 10000 ** (2 * i / d))
            expected[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / d))
    torch.testing.assert_close(pe, torch.from_numpy(expected).float(), rtol=1e-6, atol=1e-7)


def test_positional_encoding_follows_the_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert A.sinusoidal_positional_encoding(4, 6).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_positional_encoding_rejects_odd_d():
    with pytest.raises(ValueError):
        A.sinusoidal_positional_encoding(4, 5)


@pytest.mark.parametrize("offset", [-3, -1, 2, 7])
def test_shift_matrix_moves_every_position_by_the_offset(offset):
    pe = A.sinusoidal_positional_encoding(30, 16).double()
    R = A.shift_matrix(16, offset).double()
    rows = range(max(0, -offset), min(30, 30 - offset))
    for p in rows:
        torch.testing.assert_close(R @ pe[p], pe[p + offset], rtol=1e-5, atol=1e-6)


def nn_mha(E, H, bias, dtype):
    torch.manual_seed(E * 10 + H)
    mha = nn.MultiheadAttention(E, H, batch_first=True, bias=bias, dtype=dtype)
    with torch.no_grad():                                         # non-zero biases, so that they are tested too
        if bias:
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    return mha


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("E, H, bias", [(8, 2, True), (6, 3, False), (4, 4, True), (5, 1, True)])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "random"])
@pytest.mark.parametrize("training", [True, False])
def test_multi_head_matches_nn_multihead_attention(dtype, E, H, bias, mask_kind, training):
    mha = nn_mha(E, H, bias, dtype).train(training)
    L = 5
    x = torch.randn(2, L, E, dtype=dtype)
    mask = masks(L, L, ())[mask_kind]
    with torch.no_grad():
        expected = mha(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)[0]
        ours = A.multi_head_self_attention(x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
                                           mha.out_proj.bias, H, mask)
    torch.testing.assert_close(ours, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_head_weights_average_to_nn_multihead_attention_weights(dtype):
    mha = nn_mha(8, 2, True, dtype)
    x = torch.randn(3, 6, 8, dtype=dtype)
    mask = A.causal_mask(6)
    with torch.no_grad():
        _, expected = mha(x, x, x, attn_mask=~mask, need_weights=True, average_attn_weights=False)
        _, ours = A.self_attention_heads(x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
                                         mha.out_proj.bias, 2, mask)
    torch.testing.assert_close(ours, expected, **tol(dtype))


def test_multi_head_equals_per_head_sdpa_with_torch():
    E, H, L = 12, 3, 7
    x = torch.randn(2, L, E, dtype=torch.float64)
    w_in, b_in = torch.randn(3 * E, E, dtype=torch.float64), torch.randn(3 * E, dtype=torch.float64)
    w_out, b_out = torch.randn(E, E, dtype=torch.float64), torch.randn(E, dtype=torch.float64)
    q, k, v = (x @ w_in.T + b_in).split(E, dim=-1)
    hd = E // H
    heads = [F.scaled_dot_product_attention(q[..., h * hd:(h + 1) * hd], k[..., h * hd:(h + 1) * hd],
                                            v[..., h * hd:(h + 1) * hd], is_causal=True) for h in range(H)]
    expected = torch.cat(heads, dim=-1) @ w_out.T + b_out
    ours = A.multi_head_self_attention(x, w_in, b_in, w_out, b_out, H, A.causal_mask(L))
    torch.testing.assert_close(ours, expected)


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = A.split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])
    torch.testing.assert_close(A.merge_heads(heads), x)


def test_dot_product_spread_is_sqrt_d():
    dims = [1, 4, 16, 64]
    spreads = A.dot_product_spread(dims, n=20000)
    np.testing.assert_allclose(spreads, np.sqrt(dims), rtol=0.05)


def test_softmax_gradient_size_matches_autograd_jacobian():
    d, L = 8, 16
    g = torch.Generator().manual_seed(0)
    q = torch.randn(5, 1, d, generator=g, dtype=torch.float64)
    k = torch.randn(5, L, d, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(-2, -1))[:, 0] / math.sqrt(d)       # the draws softmax_gradient_size makes
    norms = [torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), s).norm() for s in scores]
    expected = torch.stack(norms).mean().item()
    assert A.softmax_gradient_size([d], L=L, n=5, power=0.5, seed=0)[0] == pytest.approx(expected, rel=1e-10)


def test_saturation_grows_without_scaling_and_not_with_it():
    dims = [2, 32, 512]
    unscaled = A.softmax_saturation(dims, power=0)
    scaled = A.softmax_saturation(dims, power=0.5)
    by_d = A.softmax_saturation(dims, power=1)
    assert unscaled[-1] > 0.9 > scaled[-1]
    assert max(scaled) - min(scaled) < 0.1
    assert by_d[-1] < 1 / 16 + 0.01 < by_d[0]                     # dividing by d flattens towards uniform


def test_gradient_vanishes_without_scaling():
    unscaled = A.softmax_gradient_size([8, 512], power=0)
    scaled = A.softmax_gradient_size([8, 512], power=0.5)
    assert unscaled[1] < unscaled[0] / 3
    assert scaled[1] == pytest.approx(scaled[0], rel=0.1)


# ---------------------------------------------------------------------------------------------
# The tiny causal transformer


def copy_into_nn(attention):
    E = attention.in_proj.in_features
    mha = nn.MultiheadAttention(E, attention.num_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attention.in_proj.weight)
        mha.in_proj_bias.copy_(attention.in_proj.bias)
        mha.out_proj.weight.copy_(attention.out_proj.weight)
        mha.out_proj.bias.copy_(attention.out_proj.bias)
    return mha


def test_causal_self_attention_matches_nn_with_causal_mask():
    torch.manual_seed(0)
    layer = A.CausalSelfAttention(8, 2)
    x = torch.randn(3, 6, 8)
    mha = copy_into_nn(layer)
    with torch.no_grad():
        expected = mha(x, x, x, attn_mask=nn.Transformer.generate_square_subsequent_mask(6), need_weights=False)[0]
        torch.testing.assert_close(layer(x), expected)
    assert layer.last_weights.shape == (3, 2, 6, 6)


def test_block_and_model_never_look_at_the_future():
    torch.manual_seed(0)
    model = A.TinyCausalTransformer(11, d_model=16, num_heads=2, num_layers=2, max_len=12)
    ids = torch.randint(0, 11, (4, 10))
    changed = ids.clone()
    changed[:, 6:] = torch.randint(0, 11, (4, 4))
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert a.shape == (4, 10, 11)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    assert [m.shape for m in model.attention_maps()] == [(4, 2, 10, 10)] * 2


def test_block_keeps_shape_and_trains():
    torch.manual_seed(0)
    block = A.CausalTransformerBlock(16, 4)
    x = torch.randn(2, 5, 16, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_model_rejects_sequences_longer_than_max_len():
    model = A.TinyCausalTransformer(5, d_model=8, num_heads=2, num_layers=1, max_len=4)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_reversal_batch_layout():
    inputs, targets = A.reversal_batch(3, 4, vocab=10, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (3, 8)
    digits = inputs[:, :4]
    assert (inputs[:, 4] == 10).all()                             # separator
    torch.testing.assert_close(targets[:, 4:], digits.flip(1))    # the second half is the first, reversed
    torch.testing.assert_close(inputs[:, 5:], digits.flip(1)[:, :3])
    assert (targets[:, :4] == -100).all()


def test_training_learns_to_reverse_and_restores_threads(capsys):
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    model = A.TinyCausalTransformer(11, d_model=32, num_heads=2, num_layers=1, max_len=16)
    history = A.train_reversal(model, n=5, steps=150, report_every=50)
    assert torch.get_num_threads() == threads
    assert len(history["loss"]) == 150 and history["report step"] == [50, 100, 150]
    assert history["token accuracy"][-1] > 0.9
    assert capsys.readouterr().out.count("step") == 3


def test_sentence_heads_do_what_their_names_say():
    demo = A.sentence_heads()
    _, weights = A.self_attention_heads(demo["x"], demo["in_proj_weight"], demo["in_proj_bias"],
                                        demo["out_proj_weight"], demo["out_proj_bias"], demo["num_heads"])
    words = demo["words"]
    previous, subject, content = weights[0]
    assert (previous[1:].argmax(-1) == torch.arange(len(words) - 1)).all()
    for query in ("sat", "it", "was"):
        assert subject[words.index(query)].argmax() == words.index("cat")
    content_words = [i for i, w in enumerate(words) if w in ("cat", "sat", "mat", "was")]
    assert set(content[0].topk(4).indices.tolist()) == set(content_words)
