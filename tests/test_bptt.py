"""The notebook-02 references against autograd, torch built-ins and closed forms."""
import pytest
import torch

from course_utils import bptt as B

DTYPES = [torch.float32, torch.float64]


def model(T, d_in, d_h, d_out, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, d_in, generator=g, dtype=dtype), torch.randn(d_h, d_in, generator=g, dtype=dtype) * 0.5,
            torch.randn(d_h, d_h, generator=g, dtype=dtype) * 0.4, torch.randn(d_out, d_h, generator=g, dtype=dtype),
            torch.randn(T, d_out, generator=g, dtype=dtype))


def autograd_grads(xs, W_hx, W_hh, W_oh, dL_dos, h0=None, chunk=None):
    """Gradients by autograd on the unrolled model, detaching h at multiples of `chunk`."""
    params = [p.clone().requires_grad_() for p in (W_hx, W_hh, W_oh)]
    h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    loss = 0
    for t in range(xs.shape[0]):
        if chunk and t > 0 and t % chunk == 0:
            h = h.detach()
        h = params[0] @ xs[t] + params[1] @ h
        loss = loss + (params[2] @ h * dL_dos[t]).sum()  # dL/do_t = dL_dos[t]
    grads = torch.autograd.grad(loss, params)
    return dict(zip(["W_hx", "W_hh", "W_oh"], grads))


def test_scalar_rnn_three_inputs_closed_form():
    w, u = torch.tensor(0.7), torch.tensor([1.5, -2.0, 0.5])
    torch.testing.assert_close(B.scalar_rnn(w, u), w ** 3 * u[0] + w ** 2 * u[1] + w * u[2])


@pytest.mark.parametrize("T", [1, 2, 3, 7])
def test_scalar_rnn_grads_match_autograd(T):
    w = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    u = torch.randn(T, dtype=torch.float64, requires_grad=True)  # so that every p_t is in the graph
    h, ps = torch.zeros((), dtype=torch.float64), []
    for t in range(T):
        p = h + u[t]
        p.retain_grad()
        ps.append(p)
        h = w * p
    h.backward()
    dw, dp1 = B.scalar_rnn_grads(w.detach(), u.detach())
    torch.testing.assert_close(dw, w.grad)
    torch.testing.assert_close(dp1, ps[0].grad)
    torch.testing.assert_close(B.scalar_rnn(w.detach(), u.detach()), h.detach())


def test_scalar_rnn_grads_three_inputs_closed_form():
    w, u = torch.tensor(1.3, dtype=torch.float64), torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
    dw, dp = B.scalar_rnn_grads(w, u)
    torch.testing.assert_close(dw, 3 * u[0] * w ** 2 + 2 * u[1] * w + u[2])
    torch.testing.assert_close(dp, w ** 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_matches_nn_rnn_without_nonlinearity(dtype):
    xs, W_hx, W_hh, W_oh, _ = model(6, 3, 4, 2, dtype)
    h0 = torch.randn(4, dtype=dtype)
    # nn.RNN has a tanh or relu: compare against the unrolled recursion written with nn.Linear instead
    lin_x, lin_h = torch.nn.Linear(3, 4, bias=False, dtype=dtype), torch.nn.Linear(4, 4, bias=False, dtype=dtype)
    with torch.no_grad():
        lin_x.weight.copy_(W_hx)
        lin_h.weight.copy_(W_hh)
        h, expected = h0, []
        for x in xs:
            h = lin_x(x) + lin_h(h)
            expected.append(h)
    hs, os = B.linear_rnn_forward(xs, W_hx, W_hh, W_oh, h0)
    torch.testing.assert_close(hs, torch.stack(expected))
    torch.testing.assert_close(os, torch.stack(expected) @ W_oh.T)
    assert hs.dtype == os.dtype == dtype


@pytest.mark.parametrize("T, d_in, d_h, d_out", [(1, 2, 3, 1), (5, 3, 2, 4), (9, 2, 4, 3)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_bptt_matches_autograd(T, d_in, d_h, d_out, with_h0):
    xs, W_hx, W_hh, W_oh, dL_dos = model(T, d_in, d_h, d_out)
    h0 = torch.randn(d_h, dtype=torch.float64) if with_h0 else None
    ours, expected = B.linear_rnn_bptt(xs, W_hx, W_hh, W_oh, dL_dos, h0), autograd_grads(xs, W_hx, W_hh, W_oh,
                                                                                          dL_dos, h0)
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name])


@pytest.mark.parametrize("T, chunk", [(6, 2), (7, 3), (5, 1), (5, 5), (4, 10), (1, 3), (10, 4)])
def test_truncated_bptt_matches_autograd_with_detach(T, chunk):
    xs, W_hx, W_hh, W_oh, dL_dos = model(T, 2, 3, 2, seed=T * 10 + chunk)
    h0 = torch.randn(3, dtype=torch.float64)
    ours = B.truncated_bptt(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0)
    expected = autograd_grads(xs, W_hx, W_hh, W_oh, dL_dos, h0, chunk)
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name])
    if chunk >= T:
        full = B.linear_rnn_bptt(xs, W_hx, W_hh, W_oh, dL_dos, h0)
        assert all(torch.allclose(ours[k], full[k]) for k in full)


@pytest.mark.parametrize("T, t", [(5, 2), (4, 4), (6, 5), (9, 1)])
def test_hidden_state_jacobian_matches_autograd(T, t):
    d = 3
    W_hh = torch.randn(d, d, dtype=torch.float64) * 0.6
    xs = torch.randn(T, 2, dtype=torch.float64)
    W_hx = torch.randn(d, 2, dtype=torch.float64)

    def h_T_from_h_t(h_t):
        h = h_t
        for step in range(t, T):  # steps t+1..T (0-indexed inputs t..T-1)
            h = W_hx @ xs[step] + W_hh @ h
        return h
    J = torch.autograd.functional.jacobian(h_T_from_h_t, torch.randn(d, dtype=torch.float64))
    torch.testing.assert_close(B.hidden_state_jacobian(W_hh, T, t), J)


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_matches_torch(max_norm, dtype):
    grads = [torch.randn(3, 2, dtype=dtype) * 3, torch.randn(4, dtype=dtype), torch.randn(2, 2, dtype=dtype)]
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    originals = [g.clone() for g in grads]
    clipped, norm = B.clip_grad_norm(grads, max_norm)
    assert isinstance(norm, float)
    assert norm == pytest.approx(total.item(), rel=1e-5)
    for ours, p in zip(clipped, params):
        torch.testing.assert_close(ours, p.grad, rtol=1e-5, atol=1e-7)
        assert ours.dtype == dtype
    assert all(torch.equal(a, b) for a, b in zip(grads, originals))
