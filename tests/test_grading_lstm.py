"""The notebook-03 grading checks: right answers pass however written, wrong ones fail with the right message."""
import pytest
import torch
import torch.nn as nn

from course_utils import lstm as L
from course_utils.grading import EXERCISES
from grading_helpers import failure_message, passes_everything, wrong_variant_tests

IDS = ["lstm_cell", "lstm_forward", "lstm_cell_state_grad", "gru_cell", "input_sensitivity"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_logic_passes(exercise_id):
    passes_everything(EXERCISES[exercise_id].reference.__wrapped__, exercise_id)


def lstm_cell_loops(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Gate by gate with separate weight slices, as the lecture's LSTMCell class does."""
    h, c = state
    H = h.shape[-1]

    def gate(k):
        out = x @ weight_ih[k * H:(k + 1) * H].T + h @ weight_hh[k * H:(k + 1) * H].T
        if bias_ih is not None:
            out = out + bias_ih[k * H:(k + 1) * H]
        if bias_hh is not None:
            out = out + bias_hh[k * H:(k + 1) * H]
        return out
    i, f, g, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), torch.tanh(gate(2)), torch.sigmoid(gate(3))
    c = f * c + i * g
    return o * torch.tanh(c), c


def lstm_forward_loops(xs, state, *weights):
    h, c = state
    outputs = torch.zeros(xs.shape[0], xs.shape[1], h.shape[-1], dtype=xs.dtype)
    for t in range(xs.shape[1]):
        h, c = lstm_cell_loops(xs[:, t], (h, c), *weights)
        outputs[:, t] = h
    return outputs, (h, c)


def lstm_forward_nn(xs, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Through nn.LSTM: forbidden."""
    lstm = nn.LSTM(xs.shape[-1], state[0].shape[-1], batch_first=True, dtype=xs.dtype, bias=bias_ih is not None)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(weight_ih)
        lstm.weight_hh_l0.copy_(weight_hh)
        if bias_ih is not None:
            lstm.bias_ih_l0.copy_(bias_ih)
            lstm.bias_hh_l0.copy_(bias_hh)
        out, (h, c) = lstm(xs, (state[0][None], state[1][None]))
    return out, (h[0], c[0])


def gru_loops(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = h.shape[-1]
    bi = bias_ih if bias_ih is not None else torch.zeros(3 * H, dtype=x.dtype)
    bh = bias_hh if bias_hh is not None else torch.zeros(3 * H, dtype=x.dtype)
    parts = [(weight_ih[k * H:(k + 1) * H], weight_hh[k * H:(k + 1) * H], bi[k * H:(k + 1) * H],
              bh[k * H:(k + 1) * H]) for k in range(3)]
    r = torch.sigmoid(x @ parts[0][0].T + parts[0][2] + h @ parts[0][1].T + parts[0][3])
    z = torch.sigmoid(x @ parts[1][0].T + parts[1][2] + h @ parts[1][1].T + parts[1][3])
    n = torch.tanh(x @ parts[2][0].T + parts[2][2] + r * (h @ parts[2][1].T + parts[2][3]))
    return z * h + (1 - z) * n


def sensitivity_jacrev(step, xs, state):
    """With torch.func.jacrev, one forward per t: allowed (autograd is not forbidden here)."""
    out = []
    for t in range(1, xs.shape[0] + 1):
        def h_t(x1, state=state):
            s = state
            h = None
            for k in range(t):
                h, s = step(x1 if k == 0 else xs[k], s)
            return h
        out.append(torch.func.jacrev(h_t)(xs[0]).norm())
    return torch.stack(out)


CORRECT = [("lstm_cell", lstm_cell_loops), ("lstm_forward", lstm_forward_loops), ("gru_cell", gru_loops),
           ("lstm_cell_state_grad", lambda dh, dc, o, c, f: dc * f + dh * o / torch.cosh(c) ** 2),
           ("input_sensitivity", sensitivity_jacrev)]


@pytest.mark.parametrize("exercise_id, fn", CORRECT, ids=[f"{e}-{i}" for i, (e, _) in enumerate(CORRECT)])
def test_other_correct_implementations_pass(exercise_id, fn):
    passes_everything(fn, exercise_id)


def cell_with(order=(0, 1, 2, 3), g_act=torch.tanh, h_of=lambda o, c: o * torch.tanh(c)):
    def cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        pre = x @ weight_ih.T + h @ weight_hh.T
        if bias_ih is not None:
            pre = pre + bias_ih + bias_hh
        parts = pre.chunk(4, dim=-1)
        i, f, g, o = (parts[k] for k in order)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * g_act(g)
        return h_of(torch.sigmoid(o), c), c
    return cell


def forward_with(cell, carry=True):
    def forward(xs, state, *weights):
        h, c = state
        outs = []
        for t in range(xs.shape[1]):
            h2, c2 = cell(xs[:, t], (h, c) if carry else state, *weights)
            outs.append(h2)
            h, c = h2, c2
        return torch.stack(outs, dim=1), (h, c)
    return forward


def sensitivity_of(measure):
    def fn(step, xs, state):
        x1 = xs[0].clone().requires_grad_(True)
        out = []
        for t in range(xs.shape[0]):
            h, state = step(x1 if t == 0 else xs[t], state)
            out.append(measure(h, x1))
        return torch.stack(out).to(xs.dtype)
    return fn


def full_jacobian(h, x1):
    return torch.stack([torch.autograd.grad(h[k], x1, retain_graph=True)[0] for k in range(h.shape[0])])


WRONG = {
    "lstm_cell": [(cell_with(order=(0, 1, 3, 2)), "i, f, g, o"), (cell_with(g_act=torch.sigmoid), "uses tanh"),
                  (cell_with(h_of=lambda o, c: o * c), "o * tanh(c)"),
                  (cell_with(order=(1, 0, 2, 3)), "input gate comes first"),
                  (lambda x, state, *w: L.lstm_cell.__wrapped__(x, state, *w)[::-1], "(h, c) in that order"),
                  (lambda x, state, w_ih, w_hh, b_ih=None, b_hh=None: L.lstm_cell(x, state, w_ih, w_hh, b_ih, b_hh),
                   "course's reference"),
                  (lambda x, state, w_ih, w_hh, b_ih=None, b_hh=None: torch.lstm_cell(x, state, w_ih, w_hh, b_ih,
                                                                                       b_hh), "torch.lstm_cell"),
                  (lambda x, state, w_ih, w_hh, b_ih=None, b_hh=None: torch.ops.aten.lstm_cell(
                      x, list(state), w_ih, w_hh, b_ih, b_hh), "torch.ops.aten.lstm_cell"),
                  (lambda x, state, *w: lstm_cell_swapped_activations(x, state, *w), "sigmoid and tanh are swapped"),
                  (lambda x, state, *w: lstm_cell_loops(x, state[::-1], *w), "hidden state first"),
                  (lambda x, state, *w: lstm_cell_reading_old_cell(x, state, *w), "NEW cell state")],
    "lstm_forward": [(forward_with(lstm_cell_loops, carry=False), "carried from step to step"),
                     (lambda xs, state, *w: (lstm_forward_loops(xs, state, *w)[0].transpose(0, 1),
                                             lstm_forward_loops(xs, state, *w)[1]), "batch first"),
                     (lambda xs, state, *w: (lstm_forward_loops(xs, state, *w)[0],
                                             tuple(s[None] for s in lstm_forward_loops(xs, state, *w)[1])),
                      "(1, B, H)"),
                     (forward_with(cell_with(order=(0, 1, 3, 2))), "i, f, g, o"),
                     (lstm_forward_nn, "torch.lstm"),
                     (forward_with(lambda x, state, *w: nn_cell_step(nn.LSTMCell, x, state, *w)), "torch.lstm_cell"),
                     (lambda xs, state, *w: (lstm_forward_loops(xs, state, *w)[0].flip(1),
                                             lstm_forward_loops(xs, state, *w)[1]), "time order")],
    "lstm_cell_state_grad": [(lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c) ** 2), "add dL/dc_{t+1} * f_{t+1}"),
                             (lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c)) + dc * f, "1 - tanh^2"),
                             (lambda dh, dc, o, c, f: dh * (1 - torch.tanh(c) ** 2) + dc * f, "output gate"),
                             (lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c) ** 2) + dc, "forget gate"),
                             (lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c) ** 2) * dc * f, "add up"),
                             (lambda dh, dc, o, c, f: (dh * o * (1 - torch.tanh(c) ** 2) + dc * f).float(), "dtype")],
    "gru_cell": [(lambda *a: textbook_gru(*a), "reset gate after the matrix product"),
                 (lambda *a: flipped_z_gru(*a), "z keeps the old state"),
                 (lambda x, h, w_ih, w_hh, b_ih=None, b_hh=None: gru_loops(x, h, w_ih, w_hh, b_ih, None),
                  "bias_hh"),
                 (lambda x, h, w_ih, w_hh, b_ih=None, b_hh=None: torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh),
                  "torch.gru_cell"),
                 (lambda x, h, *w: gru_loops(x, h, *w)[:, :1], "shape"),
                 (lambda x, h, w_ih, w_hh, b_ih=None, b_hh=None: torch.ops.aten.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh),
                  "torch.ops.aten.gru_cell"),
                 (lambda x, h, *w: nn_cell_step(nn.GRUCell, x, h, *w), "torch.gru_cell"),
                 (lambda *a: gru_bias_outside_reset(*a), "multiplies the bias b_hn too")],
    "input_sensitivity": [(sensitivity_of(lambda h, x1: h.norm()), "not the size of h_t"),
                          (sensitivity_of(lambda h, x1: full_jacobian(h, x1).norm() ** 2), "not its square"),
                          (sensitivity_of(lambda h, x1: full_jacobian(h, x1).abs().sum()), "sum of absolute"),
                          (sensitivity_of(lambda h, x1: torch.autograd.grad(h.sum(), x1, retain_graph=True)[0].norm()),
                           "not their sum"),
                          (lambda step, xs, state: sensitivity_jacrev(step, xs, state)[1:], "shape"),
                          (lambda step, xs, state: sensitivity_jacrev(step, xs, state).flip(0), "values are off"),
                          (lambda *a: sensitivity_reading_x1_everywhere(*a), "only the first step reads x_1"),
                          (lambda step, xs, state: torch.cat([torch.zeros(1, dtype=xs.dtype),
                                                              sensitivity_jacrev(step, xs, state)[:-1]]),
                           "state AFTER step t")],
}


def lstm_cell_swapped_activations(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    h, c = state
    pre = x @ weight_ih.T + h @ weight_hh.T + (0 if bias_ih is None else bias_ih + bias_hh)
    i, f, g, o = pre.chunk(4, dim=-1)
    c = torch.tanh(f) * c + torch.tanh(i) * torch.sigmoid(g)
    return torch.tanh(o) * torch.tanh(c), c


def lstm_cell_reading_old_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    h, c = state
    pre = x @ weight_ih.T + h @ weight_hh.T + (0 if bias_ih is None else bias_ih + bias_hh)
    i, f, g, o = pre.chunk(4, dim=-1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c_new


def nn_cell_step(module, x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step through nn.LSTMCell or nn.GRUCell with the given weights: forbidden."""
    h = state[0] if isinstance(state, tuple) else state
    cell = module(x.shape[-1], h.shape[-1], bias=bias_ih is not None, dtype=x.dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(weight_ih)
        cell.weight_hh.copy_(weight_hh)
        if bias_ih is not None:
            cell.bias_ih.copy_(bias_ih)
            cell.bias_hh.copy_(bias_hh)
        return cell(x, state)


def gru_bias_outside_reset(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = h.shape[-1]
    bi = bias_ih if bias_ih is not None else torch.zeros(3 * H, dtype=x.dtype)
    bh = bias_hh if bias_hh is not None else torch.zeros(3 * H, dtype=x.dtype)
    gi, gh = x @ weight_ih.T + bi, h @ weight_hh.T
    r = torch.sigmoid(gi[:, :H] + gh[:, :H] + bh[:H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H] + bh[H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:] + bh[2 * H:])
    return (1 - z) * n + z * h


def sensitivity_reading_x1_everywhere(step, xs, state):
    x1 = xs[0].clone().requires_grad_(True)
    out = []
    for _ in range(xs.shape[0]):
        h, state = step(x1, state)
        out.append(full_jacobian(h, x1).norm())
    return torch.stack(out).to(xs.dtype)


def textbook_gru(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    H = h.shape[-1]
    bi = bias_ih if bias_ih is not None else torch.zeros(3 * H, dtype=x.dtype)
    bh = bias_hh if bias_hh is not None else torch.zeros(3 * H, dtype=x.dtype)
    gi, gh = x @ weight_ih.T + bi, h @ weight_hh.T + bh
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + (r * h) @ weight_hh[2 * H:].T + bh[2 * H:])
    return (1 - z) * n + z * h


def flipped_z_gru(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    z_old = gru_loops(x, h, weight_ih, weight_hh, bias_ih, bias_hh)  # (1 - z) n + z h
    H = h.shape[-1]
    bi = bias_ih if bias_ih is not None else torch.zeros(3 * H, dtype=x.dtype)
    bh = bias_hh if bias_hh is not None else torch.zeros(3 * H, dtype=x.dtype)
    z = torch.sigmoid(x @ weight_ih[H:2 * H].T + bi[H:2 * H] + h @ weight_hh[H:2 * H].T + bh[H:2 * H])
    n = (z_old - z * h) / (1 - z)
    return z * n + (1 - z) * h


test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation = \
    wrong_variant_tests(IDS, WRONG)
