"""Cases, forbidden calls and known mistakes for notebook 02 (backprop through time)."""
import torch

from .. import bptt as ref
from ..grading import Exercise, Variant, register
from .fc_local_conv import F32, F64, randint, randn

AUTOGRAD = {
    torch.Tensor.backward: "Tensor.backward()",
    torch.autograd.grad: "torch.autograd.grad",
    torch.autograd.backward: "torch.autograd.backward",
    torch._make_dual: "forward-mode autograd (torch.func.jvp / jacfwd)",
}


def _scalar(w, T, dtype=F32):
    return lambda g: (torch.tensor(w, dtype=dtype), randn(g, T, dtype=dtype))


def _scalar_random(g, dtype):
    return torch.tensor(float(torch.empty(()).uniform_(-1.3, 1.3, generator=g)), dtype=dtype), \
        randn(g, randint(g, 1, 8), dtype=dtype)


def _with_powers(fn):
    """A wrong scalar_rnn: y = sum_t w^fn(T, t) u_t, t = 1..T."""
    def variant(w, u):
        T = u.shape[0]
        powers = torch.tensor([fn(T, t) for t in range(1, T + 1)], dtype=u.dtype)
        return (w ** powers * u).sum()
    return variant


SCALAR_CASES = {
    "three inputs, w = 0.5": _scalar(0.5, 3),
    "three inputs, w = 2": _scalar(2.0, 3),
    "one input (T = 1)": _scalar(0.7, 1),
    "six inputs, negative w": _scalar(-0.8, 6),
    "float64, five inputs": _scalar(1.1, 5, F64),
}
SCALAR_PARTS = {
    "basic": {"visible": ["three inputs, w = 0.5"], "hidden": ["three inputs, w = 2", "six inputs, negative w"],
              "random": 4},
    "edge": {"visible": ["one input (T = 1)"], "hidden": ["float64, five inputs"], "random": 6},
}

register(Exercise(
    id="scalar_rnn",
    cases=SCALAR_CASES,
    parts=SCALAR_PARTS,
    random_case=_scalar_random,
    variants=[
        Variant(_with_powers(lambda T, t: T - t), "each input is multiplied by w once more: u_t goes through "
                                                  "T - t + 1 multiplications (the last one included), so for three "
                                                  "inputs y = w^3 u1 + w^2 u2 + w u3."),
        Variant(_with_powers(lambda T, t: t), "the powers run the wrong way: the first input has travelled "
                                              "through the most steps, so it carries the highest power of w."),
        Variant(lambda w, u: w * u.sum(), "the state must be carried from step to step (p = h + u, then h = w p): "
                                          "earlier inputs are multiplied by w again at every later step."),
        Variant(lambda w, u: w * u[-1], "y depends on every input, not only the last: the state h carries the "
                                        "earlier ones forward."),
        Variant(lambda w, u: w ** u.shape[0] * u.sum(), "each input is multiplied by w only for the steps after "
                                                        "it arrives, not T times."),
    ],
))


def _grad_variant(dw, dp):
    def variant(w, u):
        T = u.shape[0]
        t = torch.arange(1, T + 1, dtype=u.dtype)
        return dw(w, u, T, t), dp(w, T)
    return variant


_good_dw = lambda w, u, T, t: ((T - t + 1) * w ** (T - t) * u).sum()  # noqa: E731
_good_dp = lambda w, T: w ** T  # noqa: E731

register(Exercise(
    id="scalar_rnn_grads",
    cases=SCALAR_CASES,
    parts=SCALAR_PARTS,
    random_case=_scalar_random,
    forbidden=AUTOGRAD,
    variants=[
        Variant(_grad_variant(lambda w, u, T, t: (w ** (T - t) * u).sum(), _good_dp),
                "dy/dw sums over every path through w: input u_t meets w in T - t + 1 places, so its term is "
                "(T - t + 1) w^(T - t) u_t (product rule), not w^(T - t) u_t."),
        Variant(_grad_variant(lambda w, u, T, t: ((T - t + 1) * w ** (T - t + 1) * u).sum(), _good_dp),
                "the derivative of w^n is n w^(n - 1): one power of w less than in y."),
        Variant(_grad_variant(_good_dw, lambda w, T: w ** (T - 1)),
                "dy/dp_1 = w^T: p_1 is multiplied by w at every one of the T steps, including the first "
                "(h_1 = w p_1)."),
        Variant(_grad_variant(_good_dw, lambda w, T: w + 0 * T), "the gradient asked for is with respect to p_1, "
                                                                 "the first step, not p_T."),
        Variant(lambda w, u: tuple(reversed(_grad_variant(_good_dw, _good_dp)(w, u))),
                "return (dy/dw, dy/dp_1) in that order."),
        Variant(_grad_variant(lambda w, u, T, t: ((T - t) * w ** (T - t - 1) * u).sum(), _good_dp),
                "each input is multiplied by w T - t + 1 times (t = 1..T), one more than your powers."),
    ],
))


# ---------------------------------------------------------------------------------------------
# The vector model


def _model(T, d_in, d_h, d_out, h0=False, dtype=F32, scale=0.5, grads=False, chunk=None):
    def build(g):
        args = [randn(g, T, d_in, dtype=dtype), randn(g, d_h, d_in, dtype=dtype) * scale,
                randn(g, d_h, d_h, dtype=dtype) * scale / d_h ** 0.5, randn(g, d_out, d_h, dtype=dtype) * scale]
        if grads:
            args.append(randn(g, T, d_out, dtype=dtype))
        if chunk is not None:
            args.append(chunk)
        args.append(randn(g, d_h, dtype=dtype) if h0 else None)
        return tuple(args)
    return build


def _model_random(grads=False, chunked=False):
    def build(g, dtype):
        T = randint(g, 1, 9)
        chunk = randint(g, 1, T + 2) if chunked else None
        return _model(T, randint(g, 1, 4), randint(g, 1, 4), randint(g, 1, 4), bool(randint(g, 0, 1)), dtype,
                      grads=grads, chunk=chunk)(g)
    return build


def _forward_variant(step, output=lambda W_oh, h, h_prev: W_oh @ h):
    def variant(xs, W_hx, W_hh, W_oh, h0=None):
        h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
        hs, os = [], []
        for x in xs:
            h_new = step(x, h, W_hx, W_hh, h0)
            os.append(output(W_oh, h_new, h))
            h = h_new
            hs.append(h)
        return torch.stack(hs), torch.stack(os)
    return variant


register(Exercise(
    id="linear_rnn_forward",
    cases={
        "T = 4, d_in = 3, d_h = 2, d_out = 1": _model(4, 3, 2, 1),
        "T = 5, all sizes different, initial state given": _model(5, 2, 4, 3, h0=True),
        "T = 1": _model(1, 2, 3, 2),
        "square sizes (d_in = d_h = d_out = 3)": _model(6, 3, 3, 3),
        "float64, initial state given": _model(4, 3, 2, 2, h0=True, dtype=F64),
    },
    parts={
        "basic": {"visible": ["T = 4, d_in = 3, d_h = 2, d_out = 1"],
                  "hidden": ["square sizes (d_in = d_h = d_out = 3)"], "random": 4},
        "edge": {"visible": ["T = 5, all sizes different, initial state given"],
                 "hidden": ["T = 1", "float64, initial state given"], "random": 6},
    },
    random_case=_model_random(),
    variants=[
        Variant(_forward_variant(lambda x, h, W_hx, W_hh, h0: W_hx @ x),
                "the hidden state must be carried: h_t = W_hx x_t + W_hh h_{t-1}."),
        Variant(_forward_variant(lambda x, h, W_hx, W_hh, h0: W_hx @ x + W_hh @ h,
                                 output=lambda W_oh, h, h_prev: W_oh @ h_prev),
                "o_t is computed from the new state h_t, not from h_{t-1}."),
        Variant(_forward_variant(lambda x, h, W_hx, W_hh, h0: W_hx @ x + W_hh.T @ h),
                "W_hh is used transposed: h_t = W_hh h_{t-1} (W_hh @ h), with rows indexing the new state."),
        Variant(lambda xs, W_hx, W_hh, W_oh, h0=None: ref.linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, None),
                "the initial state h0, when given, starts the recursion (h_0 = h0); zeros only when h0 is None."),
        Variant(_forward_variant(lambda x, h, W_hx, W_hh, h0: torch.tanh(W_hx @ x + W_hh @ h)),
                "this toy model is linear: no tanh (or other non-linearity) on the state."),
    ],
))


def _bptt_variant(transform):
    """A wrong BPTT: the reference's gradients passed through `transform(grads, args)`."""
    def variant(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
        grads = ref.linear_rnn_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, h0)
        return transform(grads, (xs, W_hx, W_hh, W_oh, dL_dos, h0))
    return variant


def _one_step(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    return ref.truncated_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, 1, h0)


def _dL_dh(xs, W_hh, W_oh, dL_dos):
    """dL/dh_t for every t, (T, d_h)."""
    g = torch.zeros(W_hh.shape[0], dtype=xs.dtype)
    out = []
    for t in reversed(range(xs.shape[0])):
        g = W_oh.T @ dL_dos[t] + W_hh.T @ g
        out.append(g)
    return torch.stack(out[::-1])


def _uses_current_state(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    hs, _ = ref.linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    grads = ref.linear_rnn_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    return dict(grads, W_hh=_dL_dh(xs, W_hh, W_oh, dL_dos).T @ hs)


def _no_recurrent_transpose(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    """The backward recursion multiplies by W_hh instead of W_hh^T."""
    hs, _ = ref.linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    h0 = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    return ref._backward(xs, hs, h0, W_hh.T, W_oh, dL_dos, xs.shape[0] + 1)


def _last_output_only(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    hs, _ = ref.linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    grads = ref.linear_rnn_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    return dict(grads, W_oh=dL_dos[-1:].T @ hs[-1:])


def _input_weights_one_step(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    grads = ref.linear_rnn_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    return dict(grads, W_hx=_one_step(xs, W_hx, W_hh, W_oh, dL_dos, h0)["W_hx"])


BPTT_CASES = {
    "T = 4, d_in = 3, d_h = 2, d_out = 1": _model(4, 3, 2, 1, grads=True),
    "T = 5, all sizes different, initial state given": _model(5, 2, 4, 3, h0=True, grads=True),
    "T = 1": _model(1, 2, 3, 2, grads=True),
    "square sizes (d_in = d_h = d_out = 3)": _model(6, 3, 3, 3, grads=True),
    "float64, initial state given": _model(4, 3, 2, 2, h0=True, dtype=F64, grads=True),
    "long sequence, T = 12": _model(12, 2, 3, 2, grads=True),
}

register(Exercise(
    id="linear_rnn_bptt",
    cases=BPTT_CASES,
    parts={
        "basic": {"visible": ["T = 4, d_in = 3, d_h = 2, d_out = 1"],
                  "hidden": ["square sizes (d_in = d_h = d_out = 3)", "long sequence, T = 12"], "random": 4},
        "edge": {"visible": ["T = 5, all sizes different, initial state given"],
                 "hidden": ["T = 1", "float64, initial state given"], "random": 6},
    },
    random_case=_model_random(grads=True),
    forbidden=AUTOGRAD,
    variants=[
        Variant(_one_step, "the gradient must flow back through time: dL/dh_t = W_oh^T dL/do_t + W_hh^T dL/dh_{t+1}, "
                           "not only the direct term from o_t."),
        Variant(_uses_current_state, "dW_hh pairs dL/dh_t with the previous state h_{t-1} (the input W_hh "
                                     "multiplied), not with h_t."),
        Variant(_no_recurrent_transpose, "the backward recursion uses the transpose: dL/dh_t gets W_hh^T dL/dh_{t+1}."),
        Variant(_last_output_only, "dW_oh sums over every step: sum_t dL/do_t h_t^T, not only the last one."),
        Variant(_bptt_variant(lambda g, a: dict(g, W_hh=g["W_hh"].T)),
                "dW_hh is transposed: gradient[i, j] belongs to W_hh[i, j], the weight from h_{t-1}[j] to h_t[i], "
                "so it is the outer product dL/dh_t h_{t-1}^T."),
        Variant(_input_weights_one_step,
                "dW_hx also needs the gradient that reaches h_t from later steps, not only from o_t."),
    ],
))


# ---------------------------------------------------------------------------------------------
# Jacobian, truncation, clipping


def _jacobian_case(d, T, t, dtype=F32):
    return lambda g: (randn(g, d, d, dtype=dtype) / d ** 0.5, T, t)


register(Exercise(
    id="hidden_state_jacobian",
    cases={
        "d_h = 3, T = 5, t = 2": _jacobian_case(3, 5, 2),
        "t = T (no steps between)": _jacobian_case(3, 4, 4),
        "one step (t = T - 1)": _jacobian_case(2, 6, 5),
        "d_h = 1": _jacobian_case(1, 7, 3),
        "float64, d_h = 4, T = 9, t = 1": _jacobian_case(4, 9, 1, F64),
    },
    parts={
        "basic": {"visible": ["d_h = 3, T = 5, t = 2"], "hidden": ["float64, d_h = 4, T = 9, t = 1"], "random": 4},
        "edge": {"visible": ["t = T (no steps between)"], "hidden": ["one step (t = T - 1)", "d_h = 1"], "random": 6},
    },
    random_case=lambda g, dtype: (lambda d, T: (randn(g, d, d, dtype=dtype) / d ** 0.5, T, randint(g, 1, T)))(
        randint(g, 1, 4), randint(g, 1, 8)),
    variants=[
        Variant(lambda W, T, t: torch.linalg.matrix_power(W, T - t + 1),
                "h_T depends on h_t through T - t multiplications by W_hh (one per step from t + 1 to T)."),
        Variant(lambda W, T, t: torch.linalg.matrix_power(W, max(T - t - 1, 0)),
                "h_T depends on h_t through T - t multiplications by W_hh, one per step from t + 1 to T."),
        Variant(lambda W, T, t: torch.linalg.matrix_power(W.T, T - t),
                "J[i, j] = dh_T[i]/dh_t[j] is W_hh^(T - t) itself; its transpose is the 'denominator layout' "
                "some lecture notes use."),
        Variant(lambda W, T, t: W ** (T - t), "a matrix power is repeated matrix multiplication "
                                              "(torch.linalg.matrix_power), not the power of each entry."),
        Variant(lambda W, T, t: (T - t) * W, "the chain rule multiplies the step Jacobians: W_hh^(T - t), not "
                                             "(T - t) W_hh."),
    ],
))


def _truncated_variant(chunk_of):
    def variant(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
        return ref.truncated_bptt.__wrapped__(xs, W_hx, W_hh, W_oh, dL_dos, chunk_of(chunk, xs.shape[0]), h0)
    return variant


def _reset_state(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    """Each chunk starts again from h0 (zeros) instead of carrying the state forward."""
    grads = None
    for start in range(0, xs.shape[0], chunk):
        part = ref.linear_rnn_bptt.__wrapped__(xs[start:start + chunk], W_hx, W_hh, W_oh,
                                               dL_dos[start:start + chunk], h0 if start == 0 else None)
        grads = part if grads is None else {k: grads[k] + part[k] for k in grads}
    return grads


def _chunks_from_the_end(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    """Boundaries counted from the end of the sequence, so the short chunk comes first."""
    T = xs.shape[0]
    hs, _ = ref.linear_rnn_forward.__wrapped__(xs, W_hx, W_hh, W_oh, h0)
    previous = torch.cat([(torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0)[None], hs[:-1]])
    boundaries = set(range((T % chunk or chunk) - 1, T, chunk))
    g = torch.zeros(W_hh.shape[0], dtype=xs.dtype)
    out = []
    for t in reversed(range(T)):
        if t in boundaries:
            g = torch.zeros_like(g)
        g = W_oh.T @ dL_dos[t] + W_hh.T @ g
        out.append(g)
    dL_dh = torch.stack(out[::-1])
    return {"W_hx": dL_dh.T @ xs, "W_hh": dL_dh.T @ previous, "W_oh": dL_dos.T @ hs}


register(Exercise(
    id="truncated_bptt",
    cases={
        "T = 6, chunk = 2": _model(6, 2, 3, 2, grads=True, chunk=2),
        "chunk does not divide T (T = 7, chunk = 3)": _model(7, 3, 2, 2, grads=True, chunk=3, h0=True),
        "chunk = 1": _model(5, 2, 2, 1, grads=True, chunk=1),
        "chunk = T (full BPTT)": _model(5, 2, 3, 2, grads=True, chunk=5),
        "chunk > T (full BPTT)": _model(4, 2, 3, 2, grads=True, chunk=10, h0=True),
        "T = 1": _model(1, 2, 2, 2, grads=True, chunk=3),
        "float64, T = 10, chunk = 4": _model(10, 2, 3, 3, grads=True, chunk=4, dtype=F64),
    },
    parts={
        "basic": {"visible": ["T = 6, chunk = 2"], "hidden": ["float64, T = 10, chunk = 4"], "random": 4},
        "edge": {"visible": ["chunk does not divide T (T = 7, chunk = 3)"],
                 "hidden": ["chunk = 1", "chunk = T (full BPTT)", "chunk > T (full BPTT)", "T = 1"], "random": 6},
    },
    random_case=_model_random(grads=True, chunked=True),
    forbidden=AUTOGRAD,
    variants=[
        Variant(_truncated_variant(lambda chunk, T: 1),
                "the gradient is stopped only at chunk boundaries (multiples of chunk), not at every step."),
        Variant(_truncated_variant(lambda chunk, T: T + 1),
                "within a chunk the gradient flows back, but it must stop at each chunk boundary "
                "(h.detach() between chunks)."),
        Variant(_reset_state, "the state is carried forward across chunks (only the gradient is stopped): do not "
                              "restart each chunk from zeros."),
        Variant(_chunks_from_the_end, "chunks start at the beginning of the sequence, boundaries at multiples of "
                                      "chunk; the last chunk may be shorter."),
        Variant(lambda xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None: ref.truncated_bptt.__wrapped__(
            xs[:xs.shape[0] // chunk * chunk], W_hx, W_hh, W_oh, dL_dos[:xs.shape[0] // chunk * chunk], chunk, h0)
            if xs.shape[0] >= chunk else None,
            "the last, shorter chunk counts too: its gradients are part of the sum."),
    ],
))


def _clip_case(shapes, max_norm, dtype=F32, scale=1.0):
    return lambda g: ([randn(g, *s, dtype=dtype) * scale for s in shapes], max_norm)


def _clip_variant(scale_of, norm_of=None):
    def variant(grads, max_norm):
        total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
        return [g * scale_of(total, max_norm, g) for g in grads], (norm_of or (lambda t, m: t))(total, max_norm)
    return variant


register(Exercise(
    id="clip_grad_norm",
    tolerance=(1e-5, 1e-8),  # CURRICULUM: agrees with torch.nn.utils.clip_grad_norm_ (which adds 1e-6 to the norm)
    cases={
        "three tensors, norm above max_norm": _clip_case([(3, 2), (4,), (2, 2)], 1.0),
        "norm below max_norm (no change)": _clip_case([(3,), (2, 2)], 10.0, scale=0.5),
        "one tensor": _clip_case([(5,)], 0.5),
        "large gradients, max_norm = 5": _clip_case([(4, 4), (4,)], 5.0, scale=30.0),
        "float64": _clip_case([(3, 3), (3,)], 0.1, dtype=F64),
    },
    parts={
        "basic": {"visible": ["three tensors, norm above max_norm"], "hidden": ["large gradients, max_norm = 5"],
                  "random": 4},
        "edge": {"visible": ["norm below max_norm (no change)"], "hidden": ["one tensor", "float64"], "random": 6},
    },
    random_case=lambda g, dtype: _clip_case([(randint(g, 1, 4), randint(g, 1, 3)) for _ in range(randint(g, 1, 3))],
                                            float(torch.empty(()).uniform_(0.1, 4, generator=g)), dtype)(g),
    variants=[
        Variant(lambda grads, m: ([g * min(1.0, m / g.norm().item()) for g in grads],
                                  torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()),
                "clipping is global: one scale factor min(1, max_norm / ||g||) for all tensors, computed from the "
                "norm of all of them together, not tensor by tensor."),
        Variant(_clip_variant(lambda t, m, g: m / t), "tensors whose global norm is already below max_norm stay as "
                                                       "they are: the factor is min(1, max_norm / ||g||)."),
        Variant(_clip_variant(lambda t, m, g: min(1.0, m / t), lambda t, m: min(t, m)),
                "total_norm is the global norm before clipping."),
        Variant(_clip_variant(lambda t, m, g: min(1.0, m / t ** 2), lambda t, m: t ** 2),
                "the norm is the square root of the sum of all squared entries."),
        Variant(_clip_variant(lambda t, m, g: min(1.0, t / m)), "the factor is max_norm / ||g|| (capped at 1), "
                                                                 "not ||g|| / max_norm."),
    ],
))
