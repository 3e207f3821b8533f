"""Cases, forbidden calls and known mistakes for notebook 03 (LSTM and GRU)."""
import torch

from .. import lstm as ref
from ..grading import Exercise, ForbiddenByName, Variant, register
from .fc_local_conv import F32, F64, randint, randn

# Matching by name catches torch.ops.aten.lstm_cell, torch.quantized_lstm and the like too.
RECURRENT_OPS = ForbiddenByName(r"lstm|gru", {
    torch.lstm_cell: "torch.lstm_cell (nn.LSTMCell)",
    torch.lstm: "torch.lstm (nn.LSTM)",
    torch.gru_cell: "torch.gru_cell (nn.GRUCell)",
    torch.gru: "torch.gru (nn.GRU)",
})


def _weights(g, gates, I, H, bias, dtype):
    return (randn(g, gates * H, I, dtype=dtype) * 0.5, randn(g, gates * H, H, dtype=dtype) * 0.5,
            randn(g, gates * H, dtype=dtype) * 0.5 if bias else None,
            randn(g, gates * H, dtype=dtype) * 0.5 if bias else None)


def _cell_case(B, I, H, bias=True, zero_state=False, dtype=F32):
    def build(g):
        x = randn(g, B, I, dtype=dtype)
        h, c = (torch.zeros(B, H, dtype=dtype),) * 2 if zero_state else (randn(g, B, H, dtype=dtype),
                                                                          randn(g, B, H, dtype=dtype))
        return (x, (h, c), *_weights(g, 4, I, H, bias, dtype))
    return build


def _cell_random(g, dtype):
    return _cell_case(randint(g, 1, 3), randint(g, 1, 4), randint(g, 1, 4), bool(randint(g, 0, 1)),
                      bool(randint(g, 0, 1)), dtype)(g)


def _lstm_variant(order=(0, 1, 2, 3), g_act=torch.tanh, use_bias_hh=True, output=lambda o, c: o * torch.tanh(c),
                  cell=lambda i, f, g, c: f * c + i * g, swap_return=False, gate_act=torch.sigmoid,
                  swap_state=False, old_cell_output=False):
    """A wrong LSTM cell: chunks taken in `order` as (i, f, g, o), with the given choices."""
    def variant(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state[::-1] if swap_state else state
        gates = ref._affine(x, weight_ih, bias_ih) + ref._affine(h, weight_hh, bias_hh if use_bias_hh else None)
        chunks = gates.chunk(4, dim=-1)
        i, f, g, o = (chunks[k] for k in order)
        c_new = cell(gate_act(i), gate_act(f), g_act(g), c)
        h = output(gate_act(o), c if old_cell_output else c_new)
        return (c_new, h) if swap_return else (h, c_new)
    return variant


LSTM_VARIANTS = [
    Variant(_lstm_variant(order=(0, 1, 3, 2)), "PyTorch stacks the gates as i, f, g, o (cell candidate g third, "
                                               "output gate o last), not i, f, o, g."),
    Variant(_lstm_variant(g_act=torch.sigmoid), "the cell candidate g uses tanh (values in [-1, 1]); only the "
                                                "gates i, f, o use the sigmoid."),
    Variant(_lstm_variant(use_bias_hh=False), "both biases count: bias_ih and bias_hh are added (when given)."),
    Variant(_lstm_variant(output=lambda o, c: o * c), "the output is h = o * tanh(c), not o * c."),
    Variant(_lstm_variant(cell=lambda i, f, g, c: f * c + g), "the input gate scales what is written: "
                                                              "c' = f * c + i * g."),
    Variant(_lstm_variant(order=(1, 0, 2, 3)), "the input gate comes first and the forget gate second (i, f, g, o)."),
    Variant(_lstm_variant(swap_return=True), "return (h, c) in that order."),
    Variant(_lstm_variant(gate_act=torch.tanh, g_act=torch.sigmoid),
            "sigmoid and tanh are swapped: the gates i, f, o are sigmoids (between 0 and 1, how much passes), the "
            "candidate g is a tanh (between -1 and 1, what is written)."),
    Variant(_lstm_variant(swap_state=True), "the state is (h, c), hidden state first, as nn.LSTMCell takes it."),
    Variant(_lstm_variant(old_cell_output=True), "the output reads the NEW cell state: h' = o * tanh(c'), with "
                                                 "c' = f * c + i * g computed first."),
]

register(Exercise(
    id="lstm_cell",
    cases={
        "batch 2, I = 3, H = 4, biases, non-zero state": _cell_case(2, 3, 4),
        "batch 1, zero state": _cell_case(1, 2, 3, zero_state=True),
        "no biases (None)": _cell_case(3, 2, 2, bias=False),
        "H = 1": _cell_case(2, 3, 1),
        "float64, batch 4": _cell_case(4, 3, 2, dtype=F64),
    },
    parts={
        "basic": {"visible": ["batch 2, I = 3, H = 4, biases, non-zero state"], "hidden": ["float64, batch 4"],
                  "random": 4},
        "edge": {"visible": ["no biases (None)"], "hidden": ["batch 1, zero state", "H = 1"], "random": 6},
    },
    random_case=_cell_random,
    forbidden=RECURRENT_OPS,
    variants=LSTM_VARIANTS,
))


def _sequence_case(B, T, I, H, bias=True, zero_state=False, dtype=F32):
    def build(g):
        xs = randn(g, B, T, I, dtype=dtype)
        h, c = (torch.zeros(B, H, dtype=dtype),) * 2 if zero_state else (randn(g, B, H, dtype=dtype),
                                                                          randn(g, B, H, dtype=dtype))
        return (xs, (h, c), *_weights(g, 4, I, H, bias, dtype))
    return build


def _forward_with(cell, carry=True, stack=lambda hs, cs: torch.stack(hs, dim=1), final=lambda h, c: (h, c)):
    def variant(xs, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        hs, cs = [], []
        for t in range(xs.shape[1]):
            h_new, c_new = cell(xs[:, t], (h, c) if carry else state, weight_ih, weight_hh, bias_ih, bias_hh)
            hs.append(h_new)
            cs.append(c_new)
            h, c = h_new, c_new
        return stack(hs, cs), final(h, c)
    return variant


_cell = ref.lstm_cell.__wrapped__

register(Exercise(
    id="lstm_forward",
    cases={
        "batch 2, T = 5, I = 3, H = 4": _sequence_case(2, 5, 3, 4),
        "T = 1": _sequence_case(2, 1, 2, 3),
        "zero initial state, no biases": _sequence_case(3, 4, 2, 2, bias=False, zero_state=True),
        "batch 1, H = 1": _sequence_case(1, 6, 2, 1),
        "float64": _sequence_case(2, 4, 3, 2, dtype=F64),
    },
    parts={
        "basic": {"visible": ["batch 2, T = 5, I = 3, H = 4"], "hidden": ["float64"], "random": 4},
        "edge": {"visible": ["T = 1"], "hidden": ["zero initial state, no biases", "batch 1, H = 1"], "random": 6},
    },
    random_case=lambda g, dtype: _sequence_case(randint(g, 1, 3), randint(g, 1, 6), randint(g, 1, 3),
                                                randint(g, 1, 4), bool(randint(g, 0, 1)), bool(randint(g, 0, 1)),
                                                dtype)(g),
    forbidden=RECURRENT_OPS,
    variants=[
        Variant(_forward_with(_cell, carry=False), "the state must be carried from step to step: each step starts "
                                                   "from the previous step's (h, c), not from the initial state."),
        Variant(_forward_with(_cell, stack=lambda hs, cs: torch.stack(cs, dim=1)),
                "the outputs are the hidden states h_t, not the cell states c_t."),
        Variant(_forward_with(_cell, stack=lambda hs, cs: torch.stack(hs, dim=0)),
                "outputs are batch first: (B, T, H), so stack along dim=1."),
        Variant(_forward_with(_cell, final=lambda h, c: (h[None], c[None])),
                "the final state has the shape of the initial one, (B, H) each, not nn.LSTM's (1, B, H)."),
        Variant(_forward_with(_lstm_variant(order=(0, 1, 3, 2))),
                "PyTorch stacks the gates as i, f, g, o (cell candidate third, output gate last)."),
        Variant(_forward_with(_cell, stack=lambda hs, cs: torch.stack(hs[::-1], dim=1)),
                "outputs[:, t] is the state after step t: keep time order."),
    ],
))


def _grad_case(shape, dtype=F32):
    def build(g):
        return (randn(g, *shape, dtype=dtype), randn(g, *shape, dtype=dtype),
                torch.sigmoid(randn(g, *shape, dtype=dtype)), randn(g, *shape, dtype=dtype) * 1.5,
                torch.sigmoid(randn(g, *shape, dtype=dtype)))
    return build


register(Exercise(
    id="lstm_cell_state_grad",
    cases={
        "batch 3, H = 4": _grad_case((3, 4)),
        "unbatched, H = 5": _grad_case((5,)),
        "H = 1": _grad_case((2, 1)),
        "float64": _grad_case((2, 3), F64),
        "large |c| (saturated tanh)": lambda g: (lambda a: (a[0], a[1], a[2], a[3] * 4, a[4]))(_grad_case((2, 6))(g)),
    },
    parts={
        "basic": {"visible": ["batch 3, H = 4"], "hidden": ["float64"], "random": 4},
        "edge": {"visible": ["unbatched, H = 5"], "hidden": ["H = 1", "large |c| (saturated tanh)"], "random": 4},
    },
    random_case=lambda g, dtype: _grad_case((randint(g, 1, 3), randint(g, 1, 5)), dtype)(g),
    variants=[
        Variant(lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c) ** 2),
                "the cell state also reaches the loss through c_{t+1} = f_{t+1} c_t + ...: add dL/dc_{t+1} * f_{t+1}."),
        Variant(lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c)) + dc * f,
                "the derivative of tanh is 1 - tanh^2."),
        Variant(lambda dh, dc, o, c, f: dh * o * torch.tanh(c) ** 2 + dc * f,
                "the derivative of tanh is 1 - tanh(c)^2, not tanh(c)^2."),
        Variant(lambda dh, dc, o, c, f: dh * (1 - torch.tanh(c) ** 2) + dc * f,
                "h_t = o_t * tanh(c_t): the output gate o_t multiplies the gradient too."),
        Variant(lambda dh, dc, o, c, f: dh * o * (1 - torch.tanh(c) ** 2) + dc,
                "the gradient from c_{t+1} passes through the forget gate: multiply it by f_{t+1}."),
        Variant(lambda dh, dc, o, c, f: (dh * o * (1 - torch.tanh(c) ** 2)) * (dc * f),
                "the two paths add up (sum over paths), they do not multiply."),
    ],
))


def _gru_case(B, I, H, bias=True, dtype=F32, zero_state=False):
    def build(g):
        x = randn(g, B, I, dtype=dtype)
        h = torch.zeros(B, H, dtype=dtype) if zero_state else randn(g, B, H, dtype=dtype)
        return (x, h, *_weights(g, 3, I, H, bias, dtype))
    return build


def _gru_variant(textbook=False, order=(0, 1, 2), flip_z=False, use_bias_hh=True, n_act=torch.tanh,
                 b_hn_outside=False):
    def variant(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        x_parts = ref._affine(x, weight_ih, bias_ih).chunk(3, dim=-1)
        h_parts = ref._affine(h, weight_hh, bias_hh if use_bias_hh else None).chunk(3, dim=-1)
        x_r, x_z, x_n = (x_parts[k] for k in order)
        h_r, h_z, _ = (h_parts[k] for k in order)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        H = h.shape[-1]
        W_hn, b_hn = weight_hh[2 * H:], (bias_hh[2 * H:] if bias_hh is not None and use_bias_hh else None)
        if textbook:   # reset applied to h before the matrix: W_hn (r * h) + b_hn
            n = n_act(x_n + ref._affine(r * h, W_hn, b_hn))
        elif b_hn_outside:   # reset applied to W_hn h only: r * (W_hn h) + b_hn
            n = n_act(x_n + r * (h @ W_hn.T) + (0 if b_hn is None else b_hn))
        else:
            n = n_act(x_n + r * h_parts[order[2]])
        return z * n + (1 - z) * h if flip_z else (1 - z) * n + z * h
    return variant


register(Exercise(
    id="gru_cell",
    cases={
        "batch 2, I = 3, H = 4, biases": _gru_case(2, 3, 4),
        "no biases (None)": _gru_case(3, 2, 2, bias=False),
        "H = 1": _gru_case(2, 2, 1),
        "float64, batch 1": _gru_case(1, 3, 3, dtype=F64),
        "zero initial state": _gru_case(3, 2, 3, zero_state=True),
    },
    parts={
        "basic": {"visible": ["batch 2, I = 3, H = 4, biases"], "hidden": ["float64, batch 1"], "random": 4},
        "edge": {"visible": ["no biases (None)"], "hidden": ["H = 1", "zero initial state"], "random": 6},
    },
    random_case=lambda g, dtype: _gru_case(randint(g, 1, 3), randint(g, 1, 4), randint(g, 1, 4),
                                           bool(randint(g, 0, 1)), dtype)(g),
    forbidden=RECURRENT_OPS,
    variants=[
        Variant(_gru_variant(textbook=True), "PyTorch's GRU applies the reset gate after the matrix product: "
                                             "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); the textbook form "
                                             "W_hn (r * h) differs."),
        Variant(_gru_variant(flip_z=True), "in PyTorch's convention z keeps the old state: h' = (1 - z) * n + z * h."),
        Variant(_gru_variant(order=(1, 0, 2)), "PyTorch stacks the gates as r, z, n (reset first)."),
        Variant(_gru_variant(use_bias_hh=False), "both biases count: bias_hh is added too (b_hn inside the reset)."),
        Variant(_gru_variant(n_act=torch.sigmoid), "the candidate n uses tanh; only r and z use the sigmoid."),
        Variant(_gru_variant(b_hn_outside=True), "the reset gate multiplies the bias b_hn too: "
                                                 "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."),
    ],
))


# ---------------------------------------------------------------------------------------------
# input_sensitivity: `step` is a callable, built here from small fixed cells


class _Step:
    """A one-step recurrent function with fixed weights; its description is what messages print."""

    def __init__(self, kind, I, H, g, dtype):
        self.kind, self.I, self.H = kind, I, H
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
        self.w_ih, self.w_hh = randn(g, gates * H, I, dtype=dtype) * 0.6, randn(g, gates * H, H, dtype=dtype) * 0.6

    def __call__(self, x, state):
        if self.kind == "rnn":
            h = torch.tanh(self.w_ih @ x + self.w_hh @ state)
            return h, h
        if self.kind == "gru":
            h = ref.gru_cell.__wrapped__(x[None], state[None], self.w_ih, self.w_hh)[0]
            return h, h
        h, c = ref.lstm_cell.__wrapped__(x[None], (state[0][None], state[1][None]), self.w_ih, self.w_hh)
        return h[0], (h[0], c[0])

    def __repr__(self):
        return f"<{self.kind} step, I={self.I}, H={self.H}>"


def _sensitivity_case(kind, T, I, H, dtype=F32, zero_state=True):
    def build(g):
        step = _Step(kind, I, H, g, dtype)
        xs = randn(g, T, I, dtype=dtype)
        h0, c0 = (torch.zeros(H, dtype=dtype), torch.zeros(H, dtype=dtype)) if zero_state else \
            (randn(g, H, dtype=dtype) * 0.5, randn(g, H, dtype=dtype))
        return step, xs, (h0, c0) if kind == "lstm" else h0
    return build


def _describe_sensitivity(args):
    step, xs, state = args
    zero = all(not s.any() for s in (state if isinstance(state, tuple) else (state,)))
    return (f"step {step!r}, xs {tuple(xs.shape)} {str(xs.dtype).replace('torch.', '')}, "
            f"{'zero' if zero else 'non-zero'} initial state")


def _sensitivity_variant(measure):
    def variant(step, xs, state):
        x1 = xs[0].clone().requires_grad_(True)
        out = []
        with torch.enable_grad():
            for t in range(xs.shape[0]):
                h, state = step(x1 if t == 0 else xs[t], state)
                out.append(measure(h, x1))
        return torch.stack(out).to(xs.dtype)
    return variant


def _first_input_everywhere(step, xs, state):
    x1 = xs[0].clone().requires_grad_(True)
    out = []
    with torch.enable_grad():
        for t in range(xs.shape[0]):
            h, state = step(x1, state)
            out.append(_jacobian(h, x1).norm())
    return torch.stack(out).to(xs.dtype)


def _shifted_by_one(step, xs, state):
    """[0, s_1, ..., s_{T-1}]: entry 0 taken as the sensitivity of h_0."""
    full = ref.input_sensitivity.__wrapped__(step, xs, state)
    return torch.cat([torch.zeros(1, dtype=full.dtype), full[:-1]])


def _jacobian(h, x1):
    rows = [torch.autograd.grad(h[k], x1, retain_graph=True)[0] for k in range(h.shape[0])]
    return torch.stack(rows)


def _current_input(step, xs, state):
    out = []
    for t in range(xs.shape[0]):
        xt = xs[t].clone().requires_grad_(True)
        with torch.enable_grad():
            h, state = step(xt, state)
            out.append(_jacobian(h, xt).norm())
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    return torch.stack(out).to(xs.dtype)


register(Exercise(
    id="input_sensitivity",
    cases={
        "tanh RNN, T = 6, I = 2, H = 3": _sensitivity_case("rnn", 6, 2, 3),
        "LSTM, T = 5": _sensitivity_case("lstm", 5, 2, 3),
        "GRU, T = 4": _sensitivity_case("gru", 4, 3, 2),
        "T = 1": _sensitivity_case("rnn", 1, 2, 2),
        "float64 LSTM, T = 8": _sensitivity_case("lstm", 8, 2, 2, F64),
        "LSTM, non-zero initial state": _sensitivity_case("lstm", 6, 3, 2, zero_state=False),
        "tanh RNN, non-zero initial state, float64": _sensitivity_case("rnn", 5, 2, 4, F64, zero_state=False),
    },
    parts={
        "basic": {"visible": ["tanh RNN, T = 6, I = 2, H = 3"],
                  "hidden": ["GRU, T = 4", "tanh RNN, non-zero initial state, float64"], "random": 0},
        "edge": {"visible": ["LSTM, T = 5"], "hidden": ["T = 1", "float64 LSTM, T = 8",
                                                        "LSTM, non-zero initial state"], "random": 0},
    },
    describe=_describe_sensitivity,
    variants=[
        Variant(_sensitivity_variant(lambda h, x1: h.norm()), "measure the sensitivity d h_t / d x_1 (a Jacobian, "
                                                             "by autograd), not the size of h_t itself."),
        Variant(_current_input, "every entry is the sensitivity to the FIRST input x_1, not to the current x_t."),
        Variant(_sensitivity_variant(lambda h, x1: _jacobian(h, x1).norm() ** 2),
                "use the Frobenius norm (square root of the sum of squares), not its square."),
        Variant(_sensitivity_variant(lambda h, x1: _jacobian(h, x1).abs().sum()),
                "use the Frobenius norm of the Jacobian, not the sum of absolute values."),
        Variant(_sensitivity_variant(lambda h, x1: torch.autograd.grad(h.sum(), x1, retain_graph=True)[0].norm()),
                "differentiate every unit of h_t separately (the whole Jacobian), not their sum."),
        Variant(_first_input_everywhere, "only the first step reads x_1: step t reads xs[t - 1], so feed x_1 at "
                                         "the first step and the other inputs after it."),
        Variant(_shifted_by_one, "entry t - 1 belongs to h_t, the state AFTER step t: the first entry is the "
                                 "sensitivity of h_1 (not of the initial state, which does not depend on x_1)."),
    ],
))
