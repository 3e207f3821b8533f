"""The notebook-03 references against nn.LSTMCell, nn.LSTM, nn.GRUCell and autograd."""
import pytest
import torch
import torch.nn as nn

from course_utils import lstm as L

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_nn(dtype, bias):
    cell = nn.LSTMCell(3, 4, bias=bias, dtype=dtype)
    x, h, c = torch.randn(2, 3, dtype=dtype), torch.randn(2, 4, dtype=dtype), torch.randn(2, 4, dtype=dtype)
    with torch.no_grad():
        expected = cell(x, (h, c))
        ours = L.lstm_cell(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih if bias else None,
                           cell.bias_hh if bias else None)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T", [1, 7])
def test_lstm_forward_matches_nn_lstm(dtype, T):
    lstm = nn.LSTM(3, 5, batch_first=True, dtype=dtype)
    xs, h0, c0 = torch.randn(2, T, 3, dtype=dtype), torch.randn(2, 5, dtype=dtype), torch.randn(2, 5, dtype=dtype)
    with torch.no_grad():
        out, (h, c) = lstm(xs, (h0[None], c0[None]))
        ours, (h_T, c_T) = L.lstm_forward(xs, (h0, c0), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                                          lstm.bias_hh_l0)
    torch.testing.assert_close(ours, out, **tol(dtype))
    torch.testing.assert_close(h_T, h[0], **tol(dtype))
    torch.testing.assert_close(c_T, c[0], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_matches_nn(dtype, bias):
    cell = nn.GRUCell(3, 4, bias=bias, dtype=dtype)
    x, h = torch.randn(5, 3, dtype=dtype), torch.randn(5, 4, dtype=dtype)
    with torch.no_grad():
        ours = L.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih if bias else None,
                          cell.bias_hh if bias else None)
        torch.testing.assert_close(ours, cell(x, h), **tol(dtype))


def test_cell_state_gradient_matches_autograd_on_an_unrolled_lstm():
    torch.manual_seed(0)
    cell = nn.LSTMCell(2, 3, dtype=torch.float64)
    xs = torch.randn(6, 1, 2, dtype=torch.float64)
    h, c = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    hs, cs, gates = [], [], []
    for x in xs:
        pre = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
        i, f, g, o = pre.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        h.retain_grad()
        c.retain_grad()
        hs.append(h)
        cs.append(c)
        gates.append((torch.sigmoid(f), torch.sigmoid(o)))
    loss = sum((hh * torch.linspace(-1, 1, 3, dtype=torch.float64)).sum() * (k + 1) for k, hh in enumerate(hs))
    loss.backward()
    for t in range(len(xs) - 1):
        f_next, o_t = gates[t + 1][0], gates[t][1]
        # dL/dh_t as autograd sees it is the total gradient reaching h_t (direct and through step t+1)
        ours = L.lstm_cell_state_grad(hs[t].grad, cs[t + 1].grad, o_t.detach(), cs[t].detach(), f_next.detach())
        torch.testing.assert_close(ours, cs[t].grad)


def test_input_sensitivity_matches_autograd_jacobian():
    torch.manual_seed(1)
    cell = nn.RNNCell(2, 3, dtype=torch.float64)

    def step(x, state):
        h = cell(x[None], state[None])[0]
        return h, h
    xs = torch.randn(5, 2, dtype=torch.float64)

    def h_t(x1, t):
        state = torch.zeros(3, dtype=torch.float64)
        for k in range(t):
            state, _ = step(x1 if k == 0 else xs[k], state)
        return state
    expected = torch.stack([torch.autograd.functional.jacobian(lambda x1: h_t(x1, t), xs[0]).norm()
                            for t in range(1, 6)])
    torch.testing.assert_close(L.input_sensitivity(step, xs, torch.zeros(3, dtype=torch.float64)), expected)
