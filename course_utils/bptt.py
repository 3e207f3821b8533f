"""Backpropagation through time on toy linear RNNs: reference implementations for notebook 02.

Scalar toy graph (h_0 = 0): for each input u_t, p_t = h_{t-1} + u_t and h_t = w p_t; y = h_T.
Vector toy model: h_t = W_hx x_t + W_hh h_{t-1}, o_t = W_oh h_t, for one sequence xs `(T, d_in)`.
"""
import torch

from .reference import reference


@reference("scalar_rnn")
def scalar_rnn(w, u):
    """y = h_T of the scalar graph: y = sum_t w^(T - t + 1) u_t (t = 1..T). w `()`, u `(T,)` -> `()`."""
    T = u.shape[0]
    powers = torch.arange(T, 0, -1, dtype=u.dtype)       # (T,): T, T-1, ..., 1
    return (w ** powers * u).sum()


@reference("scalar_rnn_grads")
def scalar_rnn_grads(w, u):
    """(dy/dw, dy/dp_1) by a backward pass through the unrolled scalar graph. w `()`, u `(T,)`.

    dy/dw = sum_t (T - t + 1) w^(T - t) u_t is the sum over the T paths through w;
    dy/dp_1 = w^T is the product of the local derivatives dh_t/dp_t = w and dp_{t+1}/dh_t = 1.
    """
    T = u.shape[0]
    # forward, keeping every p_t: p_1 = u_1, p_t = w p_{t-1} + u_t
    ps = []
    h = torch.zeros((), dtype=u.dtype)
    for t in range(T):
        p = h + u[t]
        ps.append(p)
        h = w * p
    # backward: dy/dh_T = 1; through h_t = w p_t and p_t = h_{t-1} + u_t
    dy_dw = torch.zeros((), dtype=u.dtype)
    dy_dh = torch.ones((), dtype=u.dtype)
    for t in reversed(range(T)):
        dy_dw = dy_dw + dy_dh * ps[t]   # local derivative of h_t = w p_t with respect to w
        dy_dp = dy_dh * w               # ... and with respect to p_t
        dy_dh = dy_dp                   # p_t = h_{t-1} + u_t passes the gradient on unchanged
    return dy_dw, dy_dp


@reference("linear_rnn_forward")
def linear_rnn_forward(xs, W_hx, W_hh, W_oh, h0=None):
    """h_t = W_hx x_t + W_hh h_{t-1}, o_t = W_oh h_t. xs `(T, d_in)` -> hs `(T, d_h)`, os `(T, d_out)`."""
    h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    inputs = xs @ W_hx.T                                   # (T, d_h): W_hx x_t for every t at once
    hs = []
    for t in range(xs.shape[0]):
        h = inputs[t] + W_hh @ h                           # (d_h,)
        hs.append(h)
    hs = torch.stack(hs)                                   # (T, d_h)
    return hs, hs @ W_oh.T                                 # (T, d_out)


def _backward(xs, hs, h0, W_hh, W_oh, dL_dos, chunk):
    """Gradients of the vector model, with the gradient through h stopped at multiples of `chunk`."""
    T = xs.shape[0]
    previous = torch.cat([h0[None], hs[:-1]])             # (T, d_h): h_{t-1} for every t
    dL_dhs = dL_dos @ W_oh                                 # (T, d_h): W_oh^T dL/do_t, the direct part
    g = torch.zeros(W_hh.shape[0], dtype=xs.dtype)         # dL/dh_{t+1} arriving from the future
    total = []
    for t in reversed(range(T)):
        if (t + 1) % chunk == 0:                           # h_t was detached: nothing flows back into it
            g = torch.zeros_like(g)
        g = dL_dhs[t] + W_hh.T @ g                         # dL/dh_t, (d_h,)
        total.append(g)
    dL_dh = torch.stack(total[::-1])                       # (T, d_h)
    return {"W_hx": dL_dh.T @ xs,                          # sum_t dL/dh_t x_t^T, (d_h, d_in)
            "W_hh": dL_dh.T @ previous,                    # sum_t dL/dh_t h_{t-1}^T, (d_h, d_h)
            "W_oh": dL_dos.T @ hs}                         # sum_t dL/do_t h_t^T, (d_out, d_h)


@reference("linear_rnn_bptt")
def linear_rnn_bptt(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    """Full BPTT: dL/dW for a loss whose gradient with respect to o_t is dL_dos[t] `(T, d_out)`.

    dL/dh_t = W_oh^T dL/do_t + W_hh^T dL/dh_{t+1};  dL/dW_hx = sum_t dL/dh_t x_t^T,
    dL/dW_hh = sum_t dL/dh_t h_{t-1}^T,  dL/dW_oh = sum_t dL/do_t h_t^T.
    """
    h0 = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    hs, _ = linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    return _backward(xs, hs, h0, W_hh, W_oh, dL_dos, chunk=xs.shape[0] + 1)


@reference("hidden_state_jacobian")
def hidden_state_jacobian(W_hh, T, t):
    """J[i, j] = d h_T[i] / d h_t[j] = (W_hh^(T - t))[i, j] for the linear model. `(d_h, d_h)`."""
    return torch.linalg.matrix_power(W_hh, T - t)


@reference("truncated_bptt")
def truncated_bptt(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    """Truncated BPTT: run in chunks of `chunk` steps, state carried forward, gradient stopped at each boundary.

    Equals `linear_rnn_bptt` when chunk >= T. Gradients are summed over all chunks.
    """
    h0 = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    hs, _ = linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    return _backward(xs, hs, h0, W_hh, W_oh, dL_dos, chunk=chunk)


@reference("clip_grad_norm")
def clip_grad_norm(grads, max_norm):
    """Global-norm clipping g <- min(1, max_norm / ||g||) g over a list of tensors.

    Returns (new tensors, the global norm before clipping as a float); the inputs are untouched.
    """
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item() if grads else 0.0
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads], total


# ---------------------------------------------------------------------------------------------
# Demonstrations (not graded)


def matrix_with_spectral_radius(d, radius, seed=0):
    """A random `(d, d)` matrix whose eigenvalues all have modulus `radius` (a scaled orthogonal matrix)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return radius * q


def jacobian_norms(W_hh, lags):
    """||d h_T / d h_{T-l}|| = ||W_hh^l|| (spectral norm) for each lag l of the linear model."""
    return [torch.linalg.matrix_norm(torch.linalg.matrix_power(W_hh, l), ord=2).item() for l in lags]


def nonlinear_jacobian_norms(W_hh, W_hx, xs, activation, h0=None):
    """||d h_T / d h_t|| for t = T..1 of h_t = activation(W_hx x_t + W_hh h_{t-1}), by the chain rule.

    Each step contributes diag(activation'(a_t)) W_hh; for tanh, activation' = 1 - h_t^2.
    """
    h = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype) if h0 is None else h0
    steps = []
    for x in xs:
        a = W_hx @ x + W_hh @ h                                     # (d_h,)
        h = activation(a)
        slope = 1 - h ** 2 if activation is torch.tanh else (a > 0).to(a.dtype)
        steps.append(slope[:, None] * W_hh)                         # dh_t/dh_{t-1}, (d_h, d_h)
    J = torch.eye(W_hh.shape[0], dtype=W_hh.dtype)
    norms = [1.0]
    for step in reversed(steps[1:]):                                # d h_T / d h_{T-l} for l = 1, 2, ...
        J = J @ step
        norms.append(torch.linalg.matrix_norm(J, ord=2).item())
    return norms


def randomized_truncation(xs, W_hx, W_hh, W_oh, dL_dos, keep, generator, h0=None):
    """One unbiased, randomly truncated gradient estimate (after Tallec & Ollivier, 2017).

    Each loss term backpropagates through a random number of steps L, with P(L > l) = keep^l, and
    the contribution at lag l is divided by P(L > l): in expectation that is the full gradient.
    """
    h0 = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    hs, _ = linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    previous = torch.cat([h0[None], hs[:-1]])                       # (T, d_h)
    grads = {"W_hx": torch.zeros_like(W_hx), "W_hh": torch.zeros_like(W_hh), "W_oh": dL_dos.T @ hs}
    for t in range(xs.shape[0]):
        g = W_oh.T @ dL_dos[t]                                      # dL_t/dh_t
        for lag in range(t + 1):
            weight = keep ** -lag                                   # 1 / P(L > lag)
            grads["W_hx"] += weight * torch.outer(g, xs[t - lag])
            grads["W_hh"] += weight * torch.outer(g, previous[t - lag])
            if torch.rand((), generator=generator) > keep:          # stop here with probability 1 - keep
                break
            g = W_hh.T @ g
    return grads


def sine_wave_batches(n_series=16, length=60, seed=0):
    """Noisy sine waves of random frequency and phase: inputs `(n, length, 1)` and next values as targets."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length + 1, dtype=torch.float32)
    frequency = 0.1 + 0.2 * torch.rand(n_series, 1, generator=g)
    phase = 6.28 * torch.rand(n_series, 1, generator=g)
    waves = torch.sin(frequency * t + phase) + 0.05 * torch.randn(n_series, length + 1, generator=g)
    return waves[:, :-1, None], waves[:, 1:, None]


def train_sine_rnn(clip=None, chunk=None, steps=80, lr=0.5, hidden=16, seed=0, report_every=20):
    """Train a tanh RNN to predict the next value of sine waves; return the loss after every step.

    clip: global gradient-norm threshold (None: no clipping); chunk: truncated BPTT length (None: full).
    """
    torch.manual_seed(seed)
    rnn, readout = torch.nn.RNN(1, hidden, batch_first=True), torch.nn.Linear(hidden, 1)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(2.5)                                   # a large recurrent weight: explosions happen
    params = list(rnn.parameters()) + list(readout.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    x, y = sine_wave_batches(seed=seed)
    losses = []
    for step in range(steps):
        h, total = None, 0.0
        pieces = range(0, x.shape[1], chunk or x.shape[1])
        optimizer.zero_grad()
        for start in pieces:                                         # truncated BPTT: detach between chunks
            stop = start + (chunk or x.shape[1])
            out, h = rnn(x[:, start:stop], None if h is None else h.detach())
            loss = torch.nn.functional.mse_loss(readout(out), y[:, start:stop]) * (stop - start) / x.shape[1]
            loss.backward()
            total += loss.item()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        losses.append(total)
        if report_every and (step + 1) % report_every == 0:
            print(f"  step {step + 1:>4}: loss {total:.4f}")
    return losses
