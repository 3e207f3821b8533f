"""Gates, memory and gradient flow: LSTM and GRU reference implementations for notebook 03.

Weights use PyTorch's layouts: nn.LSTMCell stacks the gates as (i, f, g, o) in weight_ih `(4H, I)`
and weight_hh `(4H, H)`; nn.GRUCell stacks (r, z, n) in `(3H, I)` and `(3H, H)`, and applies the
reset gate to (W_hn h + b_hn).

After the references, the notebook's demonstrations (not graded): an unrolled LSTM for gradient
checks, the reach of d c_T / d c_t, the textbook GRU, peephole connections, the hand-set networks of
the sensitivity maps, and the long-delay memory task.
"""
import torch
import torch.nn as nn

from .attention import single_thread
from .reference import reference


def _affine(x, weight, bias):
    out = x @ weight.T
    return out if bias is None else out + bias


def _lstm_update(gates, c):
    """From the stacked pre-activations `(B, 4H)` (i, f, g, o) and the old cell `(B, H)` to (h', c')."""
    i, f, g, o = gates.chunk(4, dim=-1)                                        # each (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@reference("lstm_cell")
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step. x `(B, I)`, state (h, c) each `(B, H)` -> (h', c') each `(B, H)`.

    i, f, o = sigmoid(.), g = tanh(.) of W_i* x + b_i* + W_h* h + b_h*;  c' = f c + i g;  h' = o tanh(c').
    """
    h, c = state
    gates = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)   # (B, 4H)
    return _lstm_update(gates, c)


@reference("lstm_forward")
def lstm_forward(xs, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """A one-layer LSTM over xs `(B, T, I)` from state (h0, c0) `(B, H)`: (outputs `(B, T, H)`, (h_T, c_T))."""
    h, c = state
    inputs = _affine(xs, weight_ih, bias_ih)                 # (B, T, 4H): the input part of every gate at once
    outputs = []
    for t in range(xs.shape[1]):
        h, c = _lstm_update(inputs[:, t] + _affine(h, weight_hh, bias_hh), c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c)                # (B, T, H)


@reference("lstm_cell_state_grad")
def lstm_cell_state_grad(dL_dh, dL_dc_next, o, c, f_next):
    """dL/dc_t = dL/dh_t * o_t * (1 - tanh(c_t)^2) + dL/dc_{t+1} * f_{t+1}, all `(..., H)` elementwise."""
    return dL_dh * o * (1 - torch.tanh(c) ** 2) + dL_dc_next * f_next


@reference("gru_cell")
def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step as nn.GRUCell computes it. x `(B, I)`, h `(B, H)` -> h' `(B, H)`.

    r, z = sigmoid(W_i* x + b_i* + W_h* h + b_h*);  n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
    h' = (1 - z) * n + z * h.
    """
    x_r, x_z, x_n = _affine(x, weight_ih, bias_ih).chunk(3, dim=-1)           # each (B, H)
    h_r, h_z, h_n = _affine(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@reference("input_sensitivity")
def input_sensitivity(step, xs, state):
    """Entry t-1 is the Frobenius norm of d h_t / d x_1 for t = 1..T, by autograd.

    step(x `(I,)`, state) -> (h_t, state); xs `(T, I)`. Returns `(T,)` in xs's dtype.
    """
    x1 = xs[0].detach().clone().requires_grad_(True)
    norms = []
    with torch.enable_grad():
        for t in range(xs.shape[0]):
            h, state = step(x1 if t == 0 else xs[t], state)
            rows = []
            for k in range(h.shape[0]):                                     # one row of d h_t / d x_1 per unit
                grad = torch.autograd.grad(h[k], x1, retain_graph=True, allow_unused=True)[0] \
                    if h[k].requires_grad else None
                rows.append(torch.zeros_like(x1) if grad is None else grad)
            norms.append(torch.stack(rows).norm())                          # Frobenius norm of (H, I)
    return torch.stack(norms).to(xs.dtype)


# ---------------------------------------------------------------------------------------------
# Demonstrations (not graded)


def _chunks(weight, bias, parts):
    """Split stacked gate weights `(parts * H, ...)` and a bias (or None) into per-gate pieces."""
    return weight.chunk(parts, dim=0), (bias.chunk(parts, dim=0) if bias is not None else (None,) * parts)


def unrolled_lstm(xs, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """A one-layer LSTM over xs `(B, T, I)`, one step at a time, keeping every intermediate value.

    Returns a dict of lists of length T, entry t for step t + 1: "h" and "c" `(B, H)` (with retain_grad(), so
    that after a backward pass their .grad holds dL/dh_t and dL/dc_t), and the gate activations
    "i", "f", "g", "o" `(B, H)`. Used to check a hand-written backward recursion against autograd.
    """
    h, c = state
    run = {key: [] for key in ("h", "c", "i", "f", "g", "o")}
    for t in range(xs.shape[1]):
        gates = _affine(xs[:, t], weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)    # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)                                             # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        if h.requires_grad:
            h.retain_grad()
            c.retain_grad()
        for key, value in zip(run, (h, c, i, f, g, o)):
            run[key].append(value)
    return run


def lstm_cell_jacobian_norms(xs, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """||d c_T / d c_{T-l}|| (spectral norm) for lags l = 0 .. T-1, one unbatched sequence xs `(T, I)`.

    Every path counts, not only the cell path: c_t reaches c_{t+1} directly (through f_{t+1}) and through
    h_t = o_t tanh(c_t), which feeds all four gates of the next step. With the step Jacobians
    S_k = d(h_k, c_k) / d(h_{k-1}, c_{k-1}) `(2H, 2H)` (by autograd),
    d c_T / d c_t = [S_T ... S_{t+1}]_(c rows) [diag(o_t (1 - tanh^2 c_t)); I].
    """
    H = weight_hh.shape[1]

    def step(x, hc):                                                             # (I,), (2H,) -> (2H,)
        h, c = lstm_cell.__wrapped__(x[None], (hc[None, :H], hc[None, H:]), weight_ih, weight_hh, bias_ih, bias_hh)
        return torch.cat([h[0], c[0]])

    with torch.no_grad():
        run = unrolled_lstm(xs[None], (state[0][None], state[1][None]), weight_ih, weight_hh, bias_ih, bias_hh)
    states = [torch.cat([h[0], c[0]]) for h, c in zip(run["h"], run["c"])]       # s_1 ... s_T, each (2H,)
    J = torch.eye(2 * H, dtype=xs.dtype)                                         # d s_T / d s_t, starting at t = T
    norms = []
    for t in range(xs.shape[0], 0, -1):                                          # t = T, T-1, ..., 1
        c_t, o_t = run["c"][t - 1][0], run["o"][t - 1][0]
        ds_dc = torch.cat([torch.diag(o_t * (1 - torch.tanh(c_t) ** 2)), torch.eye(H, dtype=xs.dtype)])  # (2H, H)
        norms.append(torch.linalg.matrix_norm(J[H:] @ ds_dc, ord=2).item())       # (H, 2H) @ (2H, H)
        if t > 1:
            S_t = torch.autograd.functional.jacobian(lambda s: step(xs[t - 1], s), states[t - 2])  # (2H, 2H)
            J = J @ S_t
    return norms


def gru_cell_textbook(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """The GRU of Cho et al. (2014), with PyTorch's weight layout: the reset gate acts on h BEFORE the matrix.

    r, z as in nn.GRUCell;  n = tanh(W_in x + b_in + W_hn (r * h) + b_hn);  h' = (1 - z) * n + z * h.
    nn.GRUCell instead uses r * (W_hn h + b_hn). x `(B, I)`, h `(B, H)` -> `(B, H)`.
    """
    (W_ir, W_iz, W_in), (b_ir, b_iz, b_in) = _chunks(weight_ih, bias_ih, 3)      # each (H, I) and (H,)
    (W_hr, W_hz, W_hn), (b_hr, b_hz, b_hn) = _chunks(weight_hh, bias_hh, 3)      # each (H, H) and (H,)
    r = torch.sigmoid(_affine(x, W_ir, b_ir) + _affine(h, W_hr, b_hr))          # (B, H)
    z = torch.sigmoid(_affine(x, W_iz, b_iz) + _affine(h, W_hz, b_hz))
    n = torch.tanh(_affine(x, W_in, b_in) + _affine(r * h, W_hn, b_hn))
    return (1 - z) * n + z * h


def peephole_lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None, peephole=None):
    """One LSTM step whose gates also read the cell (peephole connections, Gers & Schmidhuber, 2000).

    peephole `(3, H)` holds the diagonal weights p_i, p_f, p_o (None: no peepholes, exactly nn.LSTMCell):
    i = sigmoid(a_i + p_i * c),  f = sigmoid(a_f + p_f * c),  g = tanh(a_g),  c' = f * c + i * g,
    o = sigmoid(a_o + p_o * c')  (the output gate sees the NEW cell),  h' = o * tanh(c'),
    where a = W_ih x + b_ih + W_hh h + b_hh are nn.LSTMCell's pre-activations `(B, 4H)`, in the order i, f, g, o.
    """
    h, c = state
    a_i, a_f, a_g, a_o = (_affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)).chunk(4, dim=-1)
    p_i, p_f, p_o = torch.zeros(3, c.shape[-1], dtype=c.dtype) if peephole is None else peephole   # each (H,)
    i, f = torch.sigmoid(a_i + p_i * c), torch.sigmoid(a_f + p_f * c)
    c = f * c + i * torch.tanh(a_g)
    o = torch.sigmoid(a_o + p_o * c)
    return o * torch.tanh(c), c


def peephole_timer(peepholes, T=16, rate=0.2, threshold=1.0):
    """A one-unit LSTM that counts: it adds tanh(rate) to its cell at every step (constant input 1,
    input and forget gates wide open) and should open its output gate once the cell passes `threshold`.

    With peepholes the output gate reads the cell: o = sigmoid(10 (c' - threshold)). Without, it sees only
    x and h, and h is 0 while the output gate is closed, so nothing tells it when to open.
    Returns a dict of `(T,)` tensors "c", "o", "h" over time.
    """
    w_ih = torch.tensor([[0.0], [0.0], [rate], [0.0]])                           # (4, 1): only g reads the input
    w_hh = torch.zeros(4, 1)
    b = torch.tensor([10.0, 10.0, 0.0, -10.0 * threshold])                       # i, f open; o closed unless told
    p_o = 10.0 if peepholes else 0.0
    peephole = torch.tensor([[0.0], [0.0], [p_o]])                               # (3, 1): p_i, p_f, p_o
    h, c = torch.zeros(1, 1), torch.zeros(1, 1)
    out = {"c": [], "o": [], "h": []}
    for _ in range(T):
        h, c = peephole_lstm_cell(torch.ones(1, 1), (h, c), w_ih, w_hh, b, None, peephole)
        out["c"].append(c[0, 0])
        out["o"].append(torch.sigmoid(b[3] + p_o * c[0, 0]))                    # the output gate of that step
        out["h"].append(h[0, 0])
    return {key: torch.stack(values) for key, values in out.items()}


# ---------------------------------------------------------------------------------------------
# Sensitivity maps (after Graves, "Supervised Sequence Labelling with RNNs", figures 4.1 and 4.4)


def memory_demo(forget_bias=6.0, T=20, H=6, write_at=(1,), read_at=(8, 9, 10, 16, 17, 18), seed=0):
    """A tanh RNN and a hand-set LSTM reading the same sequence, as one-step functions for `input_sensitivity`.

    Inputs xs `(T, 4)`: two channels of fresh random values at every step, a write flag (on at the steps in
    `write_at`, 1-based) and a read flag (on at `read_at`). The LSTM's gates look only at the flags:
        i = sigmoid(12 write - 6),   f = sigmoid(forget_bias),   o = sigmoid(12 read - 6),
    so the input gate is open (0.998) only when writing and the output gate only when reading; the
    candidate g = tanh(W_gx x + W_gh h) has random weights. The RNN h' = tanh(W_hx x + W_hh h) has random
    weights too, with W_hh orthogonal (spectral radius 1, the best case of notebook 02). Everything is float64.

    Returns a dict: "xs"; "rnn", "lstm" (outputs h_t) and "cell" (outputs c_t), each a pair (step, initial
    state) with step(x `(I,)`, state) -> (output `(H,)`, state); "gates", a dict of `(T,)` gate values;
    "weights": "rnn" (W_hx, W_hh) and "lstm" (weight_ih, weight_hh, bias) in nn.RNNCell / nn.LSTMCell layout.
    """
    g = torch.Generator().manual_seed(seed)
    dtype = torch.float64
    xs = torch.zeros(T, 4, dtype=dtype)
    xs[:, :2] = torch.randn(T, 2, generator=g, dtype=dtype)
    xs[[t - 1 for t in write_at if t <= T], 2] = 1.0
    xs[[t - 1 for t in read_at if t <= T], 3] = 1.0

    W_hx = torch.randn(H, 4, generator=g, dtype=dtype)                          # the RNN reads every channel
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=dtype))         # orthogonal: spectral radius 1

    weight_ih = torch.zeros(4 * H, 4, dtype=dtype)                              # rows i, f, g, o
    weight_ih[:H, 2] = 12.0                                                     # i <- write flag
    weight_ih[2 * H:3 * H, :2] = 0.5 * torch.randn(H, 2, generator=g, dtype=dtype)  # g <- values
    weight_ih[3 * H:, 3] = 12.0                                                 # o <- read flag
    weight_hh = torch.zeros(4 * H, H, dtype=dtype)
    weight_hh[2 * H:3 * H] = 0.5 * torch.randn(H, H, generator=g, dtype=dtype)  # g <- h
    bias = torch.cat([torch.full((H,), -6.0), torch.full((H,), float(forget_bias)), torch.zeros(H),
                      torch.full((H,), -6.0)]).to(dtype)

    def rnn_step(x, h):
        h = torch.tanh(W_hx @ x + q @ h)                                        # (H,)
        return h, h

    def lstm_step(x, state):
        h, c = lstm_cell.__wrapped__(x[None], (state[0][None], state[1][None]), weight_ih, weight_hh, bias)
        return h[0], (h[0], c[0])

    def cell_step(x, state):
        _, (h, c) = lstm_step(x, state)
        return c, (h, c)

    zeros = torch.zeros(H, dtype=dtype)
    gates = {"input": torch.sigmoid(12 * xs[:, 2] - 6),
             "forget": torch.sigmoid(torch.full((T,), float(forget_bias), dtype=dtype)),
             "output": torch.sigmoid(12 * xs[:, 3] - 6)}
    return {"xs": xs, "rnn": (rnn_step, zeros), "lstm": (lstm_step, (zeros, zeros)),
            "cell": (cell_step, (zeros, zeros)), "gates": gates,
            "weights": {"rnn": (W_hx, q), "lstm": (weight_ih, weight_hh, bias)}}


def unit_sensitivities(sensitivity, step, xs, state, units):
    """`(units, T)`: row k is ||d out_t[k] / d x_1|| over time, from an `input_sensitivity` function.

    Each row calls sensitivity(step_k, xs, state) with a step whose output is unit k alone (shape (1,)).
    """
    rows = []
    for k in range(units):
        def step_k(x, s, k=k):
            out, s = step(x, s)
            return out[k:k + 1], s                                              # (1,)
        rows.append(sensitivity(step_k, xs, state))
    return torch.stack(rows)                                                    # (units, T)


# ---------------------------------------------------------------------------------------------
# A long-delay memory task: recall the first symbol after `delay` steps of noise


def delay_batch(batch_size, delay, n_symbols=4, noise=1.0, generator=None):
    """Sequences of delay + 1 steps whose label is the symbol shown at the first step.

    Each step has n_symbols + 2 channels: the symbol (one-hot) with a "remember" flag at step 1, Gaussian noise
    of standard deviation `noise` on the symbol channels at the steps in between, and an "answer now" flag
    at the last step. Returns x `(B, delay + 1, n_symbols + 2)` float32 and labels `(B,)` long.
    """
    symbols = torch.randint(0, n_symbols, (batch_size,), generator=generator)         # (B,)
    x = torch.zeros(batch_size, delay + 1, n_symbols + 2)
    x[:, 1:-1, :n_symbols] = noise * torch.randn(batch_size, delay - 1, n_symbols, generator=generator)
    x[torch.arange(batch_size), 0, symbols] = 1.0
    x[:, 0, n_symbols] = 1.0                                                          # remember this
    x[:, -1, n_symbols + 1] = 1.0                                                     # answer now
    return x, symbols


class DelayClassifier(nn.Module):
    """nn.RNN, nn.LSTM or nn.GRU (one layer) and a linear read-out of the last output: `(B, T, I)` -> `(B, K)`.

    keep_bias initialises the gated models to remember: the LSTM's forget-gate bias to +keep_bias and its
    input-gate bias to -keep_bias (keep most, write little), the GRU's update-gate bias z to +keep_bias
    (in PyTorch's GRU, z is the share of the old state kept). The RNN has no such knob.
    """

    LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}

    def __init__(self, kind, hidden=16, n_symbols=4, keep_bias=5.0):
        super().__init__()
        self.rnn = self.LAYERS[kind](n_symbols + 2, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, n_symbols)
        H = hidden
        with torch.no_grad():
            if kind == "LSTM":                                                       # gates i, f, g, o
                self.rnn.bias_ih_l0[:H], self.rnn.bias_hh_l0[:H] = -keep_bias, 0.0
                self.rnn.bias_ih_l0[H:2 * H], self.rnn.bias_hh_l0[H:2 * H] = keep_bias, 0.0
            if kind == "GRU":                                                        # gates r, z, n
                self.rnn.bias_ih_l0[H:2 * H], self.rnn.bias_hh_l0[H:2 * H] = keep_bias, 0.0

    def forward(self, x):
        outputs, _ = self.rnn(x)                                                     # (B, T, H)
        return self.readout(outputs[:, -1])                                          # (B, K)


def train_delay_task(kind, delay, steps=150, batch_size=32, lr=0.02, hidden=16, seed=0, check_every=25):
    """Train a DelayClassifier with Adam (gradient norm clipped at 1) until it is 99% right on 500 held-out
    sequences or `steps` steps have passed. Returns (held-out accuracy, steps taken)."""
    torch.manual_seed(seed)
    model = DelayClassifier(kind, hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    held_out = delay_batch(500, delay, generator=torch.Generator().manual_seed(seed + 1))
    for step in range(1, steps + 1):
        x, y = delay_batch(batch_size, delay, generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % check_every == 0 or step == steps:
            with torch.no_grad():
                accuracy = (model(held_out[0]).argmax(-1) == held_out[1]).float().mean().item()
            if accuracy >= 0.99:
                break
    return accuracy, step


def delay_experiment(delays, kinds=("RNN", "LSTM", "GRU"), **options):
    """Held-out accuracy of each kind of model at each delay (dict kind -> list), one line of progress per model."""
    results = {}
    with single_thread():
        for kind in kinds:
            print(f"{kind:>4}:", end="", flush=True)
            results[kind] = []
            for delay in delays:
                accuracy, steps = train_delay_task(kind, delay, **options)
                results[kind].append(accuracy)
                print(f"  delay {delay} {accuracy:.0%} ({steps} steps)", end="", flush=True)
            print()
    return results
