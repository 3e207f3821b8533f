"""Gates, memory and gradient flow: LSTM and GRU reference implementations for notebook 03.

Weights use PyTorch's layouts: nn.LSTMCell stacks the gates as (i, f, g, o) in weight_ih `(4H, I)`
and weight_hh `(4H, H)`; nn.GRUCell stacks (r, z, n) in `(3H, I)` and `(3H, H)`, and applies the
reset gate to (W_hn h + b_hn).
"""
import torch

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
