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


# ---------------------------------------------------------------------------------------------
# The demonstrations of notebook 03 (not graded), against torch built-ins, autograd and closed forms

F64 = torch.float64


def lstm_params(cell):
    return [p.detach() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]


def test_unrolled_lstm_matches_nn_lstm_and_exposes_gates():
    torch.manual_seed(2)
    layer = nn.LSTM(3, 4, batch_first=True, dtype=F64)
    xs, h0, c0 = torch.randn(2, 6, 3, dtype=F64), torch.randn(2, 4, dtype=F64), torch.randn(2, 4, dtype=F64)
    weights = [layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0]
    run = L.unrolled_lstm(xs, (h0, c0), *weights)
    with torch.no_grad():
        out, (h_n, c_n) = layer(xs, (h0[None], c0[None]))
    torch.testing.assert_close(torch.stack(run["h"], dim=1), out)
    torch.testing.assert_close(run["c"][-1], c_n[0])
    previous = [c0] + run["c"][:-1]
    for t in range(6):   # the gates recombine into the states nn.LSTM computed
        torch.testing.assert_close(run["c"][t], run["f"][t] * previous[t] + run["i"][t] * run["g"][t])
        torch.testing.assert_close(run["h"][t], run["o"][t] * torch.tanh(run["c"][t]))
    sum(h.sum() for h in run["h"]).backward()
    assert all(c.grad is not None and h.grad is not None for c, h in zip(run["c"], run["h"]))


def test_lstm_cell_jacobian_norms_match_autograd_through_nn_lstmcell():
    torch.manual_seed(3)
    cell = nn.LSTMCell(2, 3, dtype=F64)
    xs = torch.randn(7, 2, dtype=F64)
    h0, c0 = torch.randn(3, dtype=F64), torch.randn(3, dtype=F64)
    norms = L.lstm_cell_jacobian_norms(xs, (h0, c0), *lstm_params(cell))
    # the states nn.LSTMCell goes through, and its output gates o_t = sigmoid(W_io x_t + W_ho h_{t-1} + b_o)
    hs, cs, gates_o = [h0], [c0], [None]
    with torch.no_grad():
        for x in xs:
            gates_o.append(torch.sigmoid(x @ cell.weight_ih[9:].T + hs[-1] @ cell.weight_hh[9:].T
                                         + cell.bias_ih[9:] + cell.bias_hh[9:]))
            h, c = cell(x[None], (hs[-1][None], cs[-1][None]))
            hs.append(h[0])
            cs.append(c[0])
    for t in range(1, 8):   # c_t -> c_T with h_t = o_t tanh(c_t), then nn.LSTMCell for steps t+1 .. T

        def c_T(c_t, t=t):
            h, c = gates_o[t] * torch.tanh(c_t), c_t
            for x in xs[t:]:
                h, c = (v[0] for v in cell(x[None], (h[None], c[None])))
            return c
        J = torch.autograd.functional.jacobian(c_T, cs[t])
        assert abs(torch.linalg.matrix_norm(J, ord=2).item() - norms[7 - t]) < 1e-9


def test_cell_path_alone_is_the_product_of_forget_gates():
    torch.manual_seed(4)
    cell = nn.LSTMCell(2, 3, dtype=F64)
    w_ih, _, b_ih, b_hh = lstm_params(cell)
    xs = torch.randn(9, 2, dtype=F64)
    zeros = torch.zeros(3, dtype=F64)
    norms = L.lstm_cell_jacobian_norms(xs, (zeros, zeros), w_ih, torch.zeros(12, 3, dtype=F64), b_ih, b_hh)
    f = torch.sigmoid(xs @ w_ih[3:6].T + b_ih[3:6] + b_hh[3:6])          # with W_hh = 0 the gates see x only
    expected = [1.0] + [f[9 - lag:].prod(0).max().item() for lag in range(1, 9)]
    torch.testing.assert_close(torch.tensor(norms, dtype=F64), torch.tensor(expected, dtype=F64))


def test_textbook_gru_differs_from_nn_grucell_unless_the_reset_gate_is_open():
    torch.manual_seed(5)
    gru = nn.GRUCell(3, 4, dtype=F64)
    x, h = torch.randn(5, 3, dtype=F64), torch.randn(5, 4, dtype=F64)
    with torch.no_grad():
        params = (gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh)
        assert (L.gru_cell_textbook(x, h, *params) - gru(x, h)).abs().max() > 1e-2
        # the closed form of Cho et al., written out with the weights split by hand
        W_ir, W_iz, W_in = gru.weight_ih.split(4)
        W_hr, W_hz, W_hn = gru.weight_hh.split(4)
        b_ir, b_iz, b_in = gru.bias_ih.split(4)
        b_hr, b_hz, b_hn = gru.bias_hh.split(4)
        r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        torch.testing.assert_close(L.gru_cell_textbook(x, h, *params), (1 - z) * n + z * h)
        gru.bias_ih[:4] = 40.0                                               # r = 1: resetting changes nothing
        torch.testing.assert_close(L.gru_cell_textbook(x, h, *params), gru(x, h))


def test_peephole_cell_without_peepholes_is_nn_lstmcell():
    cell = nn.LSTMCell(3, 4, dtype=F64)
    x, h, c = torch.randn(2, 3, dtype=F64), torch.randn(2, 4, dtype=F64), torch.randn(2, 4, dtype=F64)
    with torch.no_grad():
        for peephole in (None, torch.zeros(3, 4, dtype=F64)):
            for ours, theirs in zip(L.peephole_lstm_cell(x, (h, c), *lstm_params(cell), peephole=peephole),
                                    cell(x, (h, c))):
                torch.testing.assert_close(ours, theirs)


def test_peepholes_are_a_cell_dependent_shift_of_nn_lstmcell_biases():
    """For one sequence, p * c in a gate is the same as adding p * c to that gate's bias."""
    torch.manual_seed(6)
    cell = nn.LSTMCell(3, 4, dtype=F64)
    x, h, c = torch.randn(1, 3, dtype=F64), torch.randn(1, 4, dtype=F64), torch.randn(1, 4, dtype=F64)
    p = torch.randn(3, 4, dtype=F64)
    w_ih, w_hh, b_ih, b_hh = lstm_params(cell)
    with torch.no_grad():
        shifted = b_ih.clone()
        shifted[:4] += p[0] * c[0]                                            # input gate sees c_{t-1}
        shifted[4:8] += p[1] * c[0]                                           # forget gate sees c_{t-1}
        _, c_new = torch.lstm_cell(x, (h, c), w_ih, w_hh, shifted, b_hh)      # c' does not involve o
        shifted[12:] += p[2] * c_new[0]                                       # output gate sees c_t
        expected = torch.lstm_cell(x, (h, c), w_ih, w_hh, shifted, b_hh)
        for ours, theirs in zip(L.peephole_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh, p), expected):
            torch.testing.assert_close(ours, theirs)


def test_peephole_timer_follows_its_closed_form():
    for peepholes in (True, False):
        run = L.peephole_timer(peepholes, T=12, rate=0.2, threshold=1.0)
        i = f = torch.sigmoid(torch.tensor(10.0, dtype=F64))
        t = torch.arange(1, 13, dtype=F64)
        c = i * torch.tanh(torch.tensor(0.2, dtype=F64)) * (1 - f ** t) / (1 - f)   # geometric sum of the writes
        o = torch.sigmoid(10 * (c - 1)) if peepholes else torch.sigmoid(torch.tensor(-10.0, dtype=F64)).expand(12)
        c, o = c.float(), o.float()
        torch.testing.assert_close(run["c"], c)
        torch.testing.assert_close(run["o"], o)
        torch.testing.assert_close(run["h"], o * torch.tanh(c))


def test_memory_demo_steps_are_nn_cells_with_the_documented_gates():
    demo = L.memory_demo(forget_bias=3.0, T=12, H=5)
    xs = demo["xs"]
    W_hx, W_hh = demo["weights"]["rnn"]
    rnn = nn.RNNCell(4, 5, bias=False, dtype=F64)
    weight_ih, weight_hh, bias = demo["weights"]["lstm"]
    cell = nn.LSTMCell(4, 5, dtype=F64)
    with torch.no_grad():
        rnn.weight_ih.copy_(W_hx), rnn.weight_hh.copy_(W_hh)
        cell.weight_ih.copy_(weight_ih), cell.weight_hh.copy_(weight_hh), cell.bias_ih.copy_(bias)
        cell.bias_hh.zero_()
        torch.testing.assert_close(W_hh @ W_hh.T, torch.eye(5, dtype=F64))  # orthogonal
        (rnn_step, h), (lstm_step, state), (cell_step, _) = demo["rnn"], demo["lstm"], demo["cell"]
        h_ref, hc_ref = torch.zeros(1, 5, dtype=F64), (torch.zeros(1, 5, dtype=F64),) * 2
        for t, x in enumerate(xs):
            h, _ = rnn_step(x, h)
            c_out, _ = cell_step(x, state)
            out, state = lstm_step(x, state)
            h_ref, hc_ref = rnn(x[None], h_ref), cell(x[None], hc_ref)
            torch.testing.assert_close(h, h_ref[0])
            torch.testing.assert_close(out, hc_ref[0][0])
            torch.testing.assert_close(c_out, hc_ref[1][0])
            gates = torch.sigmoid(x @ weight_ih.T + bias).chunk(4)            # h does not reach the gates
            for name, k in (("input", 0), ("forget", 1), ("output", 3)):
                torch.testing.assert_close(gates[k], demo["gates"][name][t].expand(5))


def test_memory_demo_reproduces_the_graves_contrast():
    demo = L.memory_demo(forget_bias=6.0)
    f = torch.sigmoid(torch.tensor(6.0, dtype=F64))
    rnn = L.input_sensitivity(demo["rnn"][0], demo["xs"], demo["rnn"][1])
    cells = L.input_sensitivity(demo["cell"][0], demo["xs"], demo["cell"][1])
    outputs = L.input_sensitivity(demo["lstm"][0], demo["xs"], demo["lstm"][1])
    assert rnn[-1] < 1e-3 * rnn[0]                                            # the RNN forgets x_1
    torch.testing.assert_close(cells / cells[0], f ** torch.arange(20, dtype=F64), rtol=0.02, atol=0)
    read = demo["gates"]["output"] > 0.5                                       # h_t shows x_1 only when read
    assert outputs[read].min() > 20 * outputs[~read].max()


def test_unit_sensitivities_are_the_rows_of_the_jacobian():
    demo = L.memory_demo(T=6, H=4)
    step, state = demo["lstm"]
    xs = demo["xs"]
    rows = L.unit_sensitivities(L.input_sensitivity, step, xs, state, 4)      # (4, 6)

    def h_t(x1, t):
        s = state
        for k in range(t):
            out, s = step(x1 if k == 0 else xs[k], s)
        return out
    for t in range(1, 7):
        J = torch.autograd.functional.jacobian(lambda x1: h_t(x1, t), xs[0])  # (4, I)
        torch.testing.assert_close(rows[:, t - 1], J.norm(dim=1))


def test_delay_batch_layout():
    x, y = L.delay_batch(64, delay=7, n_symbols=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 8, 6) and y.shape == (64,) and y.dtype == torch.long
    torch.testing.assert_close(x[:, 0, :4], nn.functional.one_hot(y, 4).float())
    assert (x[:, 0, 4] == 1).all() and (x[:, 1:, 4] == 0).all()               # remember flag at step 1 only
    assert (x[:, -1, 5] == 1).all() and (x[:, :-1, 5] == 0).all()             # answer flag at the end only
    assert (x[:, -1, :4] == 0).all() and 0.8 < x[:, 1:-1, :4].std() < 1.2


def test_delay_classifier_starts_with_open_keep_gates():
    lstm_model, gru_model = L.DelayClassifier("LSTM", hidden=3, keep_bias=5.0), L.DelayClassifier("GRU", hidden=3)
    keep, write = torch.sigmoid(torch.tensor(5.0)), torch.sigmoid(torch.tensor(-5.0))
    with torch.no_grad():
        zero = torch.zeros(1, 1, 6)
        # nn.LSTM, one step from h = 0, c = 1 with zero input: c' = f * 1 + i * g, with f = sigmoid(5), i = sigmoid(-5)
        layer = lstm_model.rnn
        _, (_, c) = layer(zero, (torch.zeros(1, 1, 3), torch.ones(1, 1, 3)))
        g = torch.tanh(layer.bias_ih_l0[6:9] + layer.bias_hh_l0[6:9])
        torch.testing.assert_close(c[0, 0], keep + write * g)
        # nn.GRU, one step from h = 1 with zero input: h' = (1 - z) n + z, with z = sigmoid(5 + W_hz 1)
        layer = gru_model.rnn
        _, h = layer(zero, torch.ones(1, 1, 3))
        pre = layer.weight_hh_l0.sum(1) + layer.bias_hh_l0 + layer.bias_ih_l0      # (9,): gates r, z, n at h = 1
        r, z = torch.sigmoid(pre[:3]), torch.sigmoid(5.0 + layer.weight_hh_l0[3:6].sum(1))
        n = torch.tanh(layer.bias_ih_l0[6:] + r * (layer.weight_hh_l0[6:].sum(1) + layer.bias_hh_l0[6:]))
        torch.testing.assert_close(h[0, 0], (1 - z) * n + z)
    assert lstm_model(torch.zeros(2, 5, 6)).shape == (2, 4)


def test_gated_models_learn_a_short_delay(capsys):
    accuracy = L.delay_experiment([5], kinds=("LSTM",))
    assert accuracy["LSTM"][0] >= 0.99
    assert "LSTM" in capsys.readouterr().out
