"""The notebook-02 grading checks: right answers pass however written, wrong ones fail with the right message."""
import numpy as np
import pytest
import torch

from course_utils import bptt as B
from course_utils.grading import EXERCISES, check
from grading_helpers import failure_message, passes_everything, wrong_variant_tests

IDS = ["scalar_rnn", "scalar_rnn_grads", "linear_rnn_forward", "linear_rnn_bptt", "hidden_state_jacobian",
       "truncated_bptt", "clip_grad_norm"]


def test_every_curriculum_exercise_is_registered():
    assert set(IDS) <= set(EXERCISES)


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_logic_passes(exercise_id):
    passes_everything(EXERCISES[exercise_id].reference.__wrapped__, exercise_id)


# ---------------------------------------------------------------------------------------------
# Correct implementations written differently from the references


def scalar_loop(w, u):
    h = torch.zeros((), dtype=u.dtype)
    for u_t in u:
        h = w * (h + u_t)
    return h


def scalar_grads_forward_mode(w, u):
    """Carry (h, dh/dw, dh/dp_1) forward instead of a backward pass."""
    h = torch.zeros((), dtype=u.dtype)
    dh_dw = torch.zeros((), dtype=u.dtype)
    dh_dp1 = None
    for u_t in u:
        p = h + u_t
        dh_dw = p + w * dh_dw                  # d(w p)/dw with p depending on w through h
        dh_dp1 = w if dh_dp1 is None else w * dh_dp1
        h = w * p
    return dh_dw, dh_dp1


def forward_numpy(xs, W_hx, W_hh, W_oh, h0=None):
    X, A, Wh, C = (t.double().numpy() for t in (xs, W_hx, W_hh, W_oh))
    h = np.zeros(Wh.shape[0]) if h0 is None else h0.double().numpy()
    hs = []
    for x in X:
        h = A @ x + Wh @ h
        hs.append(h)
    hs = np.array(hs)
    return torch.from_numpy(hs).to(xs.dtype), torch.from_numpy(hs @ C.T).to(xs.dtype)


def bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0=None, chunk=None):
    T = xs.shape[0]
    h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0.clone()
    states = [h]
    for t in range(T):
        states.append(W_hx @ xs[t] + W_hh @ states[-1])
    grads = {"W_hx": torch.zeros_like(W_hx), "W_hh": torch.zeros_like(W_hh), "W_oh": torch.zeros_like(W_oh)}
    carry = torch.zeros(W_hh.shape[0], dtype=xs.dtype)
    for t in range(T - 1, -1, -1):
        if chunk is not None and (t + 1) % chunk == 0:
            carry = torch.zeros_like(carry)
        grads["W_oh"] += torch.outer(dL_dos[t], states[t + 1])
        delta = W_oh.T @ dL_dos[t] + W_hh.T @ carry
        grads["W_hx"] += torch.outer(delta, xs[t])
        grads["W_hh"] += torch.outer(delta, states[t])
        carry = delta
    return grads


def truncated_loops(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    return bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0, chunk)


def jacobian_loop(W_hh, T, t):
    J = torch.eye(W_hh.shape[0], dtype=W_hh.dtype)
    for _ in range(T - t):
        J = W_hh @ J
    return J


def clip_torch(grads, max_norm):
    """Using torch's own clip_grad_norm_ on copies: allowed (not forbidden)."""
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], float(total)


CORRECT = [("scalar_rnn", scalar_loop), ("scalar_rnn_grads", scalar_grads_forward_mode),
           ("linear_rnn_forward", forward_numpy), ("linear_rnn_bptt", bptt_loops),
           ("truncated_bptt", truncated_loops), ("hidden_state_jacobian", jacobian_loop),
           ("clip_grad_norm", clip_torch)]


@pytest.mark.parametrize("exercise_id, fn", CORRECT, ids=[f"{e}-{f.__name__}" for e, f in CORRECT])
def test_other_correct_implementations_pass(exercise_id, fn):
    passes_everything(fn, exercise_id)


# ---------------------------------------------------------------------------------------------
# Wrong implementations


def scalar_off_by_one(w, u):
    h = torch.zeros((), dtype=u.dtype)
    for u_t in u:
        h = w * h + u_t
    return h


def scalar_no_state(w, u):
    return (w * u).sum()


def scalar_autograd(w, u):
    w = w.clone().requires_grad_()
    p1 = u[0].clone().requires_grad_()
    h = w * p1
    for u_t in u[1:]:
        h = w * (h + u_t)
    h.backward()
    return w.grad, p1.grad


def scalar_autograd_grad(w, u):
    w = w.clone().requires_grad_()
    y = scalar_loop(w, u)
    return torch.autograd.grad(y, w)[0], w.detach() ** len(u)


def grads_missing_product_rule(w, u):
    T = len(u)
    return sum(w ** (T - t - 1) * u[t] for t in range(T)), w ** T


def forward_no_carry(xs, W_hx, W_hh, W_oh, h0=None):
    hs = xs @ W_hx.T
    return hs, hs @ W_oh.T


def forward_tanh(xs, W_hx, W_hh, W_oh, h0=None):
    h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    hs = []
    for x in xs:
        h = torch.tanh(W_hx @ x + W_hh @ h)
        hs.append(h)
    hs = torch.stack(hs)
    return hs, hs @ W_oh.T


def forward_ignores_h0(xs, W_hx, W_hh, W_oh, h0=None):
    return forward_numpy(xs, W_hx, W_hh, W_oh, None)


def forward_includes_h0(xs, W_hx, W_hh, W_oh, h0=None):
    hs, os = forward_numpy(xs, W_hx, W_hh, W_oh, h0)
    start = torch.zeros_like(hs[:1]) if h0 is None else h0[None]
    return torch.cat([start, hs]), os


def bptt_one_step(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    return bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0, chunk=1)


def bptt_transposed_hh(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    grads = bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    return dict(grads, W_hh=grads["W_hh"].T)


def bptt_autograd(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    params = [p.clone().requires_grad_() for p in (W_hx, W_hh, W_oh)]
    h = torch.zeros(W_hh.shape[0], dtype=xs.dtype) if h0 is None else h0
    loss = 0
    for t in range(xs.shape[0]):
        h = params[0] @ xs[t] + params[1] @ h
        loss = loss + (params[2] @ h * dL_dos[t]).sum()
    loss.backward()
    return {"W_hx": params[0].grad, "W_hh": params[1].grad, "W_oh": params[2].grad}


def bptt_current_state(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    grads = bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    hs, _ = forward_numpy(xs, W_hx, W_hh, W_oh, h0)
    deltas = []
    carry = torch.zeros(W_hh.shape[0], dtype=xs.dtype)
    for t in range(xs.shape[0] - 1, -1, -1):
        carry = W_oh.T @ dL_dos[t] + W_hh.T @ carry
        deltas.append(carry)
    return dict(grads, W_hh=torch.stack(deltas[::-1]).T @ hs)


def bptt_last_output(xs, W_hx, W_hh, W_oh, dL_dos, h0=None):
    grads = bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0)
    hs, _ = forward_numpy(xs, W_hx, W_hh, W_oh, h0)
    return dict(grads, W_oh=torch.outer(dL_dos[-1], hs[-1]))


def truncated_full(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    return bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0)


def truncated_every_step(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    return bptt_loops(xs, W_hx, W_hh, W_oh, dL_dos, h0, chunk=1)


def truncated_reset(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    total = None
    for start in range(0, xs.shape[0], chunk):
        part = bptt_loops(xs[start:start + chunk], W_hx, W_hh, W_oh, dL_dos[start:start + chunk],
                          h0 if start == 0 else None)
        total = part if total is None else {k: total[k] + part[k] for k in total}
    return total


def truncated_drop_last(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    keep = xs.shape[0] // chunk * chunk or xs.shape[0]
    return bptt_loops(xs[:keep], W_hx, W_hh, W_oh, dL_dos[:keep], h0, chunk)


def truncated_autograd(xs, W_hx, W_hh, W_oh, dL_dos, chunk, h0=None):
    return bptt_autograd(xs, W_hx, W_hh, W_oh, dL_dos, h0)


def clip_per_tensor(grads, max_norm):
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    return [g * min(1.0, max_norm / float(g.norm())) for g in grads], total


def clip_always(grads, max_norm):
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    return [g * (max_norm / total) for g in grads], total


def clip_norm_after(grads, max_norm):
    clipped, total = B.clip_grad_norm.__wrapped__(grads, max_norm)
    return clipped, min(total, max_norm)


def clip_no_sqrt(grads, max_norm):
    total = float(sum((g ** 2).sum() for g in grads))
    return [g * min(1.0, max_norm / total) for g in grads], total


def clip_in_place(grads, max_norm):
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    for g in grads:
        g.mul_(min(1.0, max_norm / total))
    return grads, total


WRONG = {
    "scalar_rnn": [(scalar_off_by_one, "multiplied by w once more"), (scalar_no_state, "carried from step to step"),
                   (lambda w, u: scalar_loop(w, u.flip(0)), "powers run the wrong way"),
                   (lambda w, u: w * u[-1], "not only the last"),
                   (lambda w, u: scalar_loop(w, u).double(), "dtype float64, expected float32"),
                   (lambda w, u: torch.stack([scalar_loop(w, u[:t + 1]) for t in range(len(u))]), "shape")],
    "scalar_rnn_grads": [(scalar_autograd, "Tensor.backward()"), (scalar_autograd_grad, "torch.autograd.grad"),
                         (grads_missing_product_rule, "product rule"),
                         (lambda w, u: (scalar_grads_forward_mode(w, u)[0], w ** (len(u) - 1)), "dy/dp_1 = w^T"),
                         (lambda w, u: scalar_grads_forward_mode(w, u)[::-1], "in that order"),
                         (lambda w, u: (scalar_grads_forward_mode(w, u)[0], w), "not p_T")],
    "linear_rnn_forward": [(forward_no_carry, "must be carried"), (forward_tanh, "linear"),
                           (forward_ignores_h0, "initial state"), (forward_includes_h0, "shape"),
                           (lambda xs, A, W, C, h0=None: forward_numpy(xs, A, W.T, C, h0), "transposed"),
                           (lambda xs, A, W, C, h0=None: forward_numpy(xs, A, W, C, h0)[0], "tuple")],
    "linear_rnn_bptt": [(bptt_one_step, "flow back through time"), (bptt_autograd, "Tensor.backward()"),
                        (bptt_current_state, "previous state"), (bptt_last_output, "every step"),
                        (bptt_transposed_hh, "transposed"),
                        (lambda *a, **k: {key: v for key, v in bptt_loops(*a, **k).items() if key != "W_oh"},
                         "keys")],
    "hidden_state_jacobian": [(lambda W, T, t: jacobian_loop(W, T + 1, t), "T - t multiplications"),
                              (lambda W, T, t: jacobian_loop(W.T, T, t), "denominator layout"),
                              (lambda W, T, t: W ** (T - t), "repeated matrix multiplication"),
                              (lambda W, T, t: (T - t) * W, "multiplies the step Jacobians"),
                              (lambda W, T, t: jacobian_loop(W, T, t).float(), "dtype"),
                              (lambda W, T, t: torch.eye(W.shape[0], dtype=W.dtype), "values are off")],
    "truncated_bptt": [(truncated_full, "must stop at each chunk boundary"),
                       (truncated_every_step, "not at every step"), (truncated_reset, "state is carried forward"),
                       (truncated_drop_last, "shorter chunk counts too"), (truncated_autograd, "Tensor.backward()"),
                       (lambda *a, **k: {key: v.T for key, v in truncated_loops(*a, **k).items()}, "shape")],
    "clip_grad_norm": [(clip_per_tensor, "clipping is global"), (clip_always, "stay as they are"),
                       (clip_norm_after, "before clipping"), (clip_no_sqrt, "square root"),
                       (clip_in_place, "changed its input tensors in place"),
                       (lambda grads, m: B.clip_grad_norm.__wrapped__(grads, m)[0], "tuple")],
}


test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation = \
    wrong_variant_tests(IDS, WRONG)


def test_forward_mode_autograd_is_forbidden_too():
    def with_jvp(w, u):
        dy_dw = torch.func.jvp(lambda w_: B.scalar_rnn.__wrapped__(w_, u), (w,), (torch.ones_like(w),))[1]
        return dy_dw, w ** len(u)
    assert "forward-mode autograd" in failure_message(with_jvp, "scalar_rnn_grads")


def test_autograd_is_allowed_where_not_forbidden():
    def forward_with_autograd_inside(xs, W_hx, W_hh, W_oh, h0=None):
        w = W_hh.clone().requires_grad_()
        torch.autograd.grad((w ** 2).sum(), w)  # autograd is not forbidden in this exercise
        return forward_numpy(xs, W_hx, W_hh, W_oh, h0)
    passes_everything(forward_with_autograd_inside, "linear_rnn_forward")


def test_visible_check_prints_one_line(capsys):
    check(scalar_loop, "scalar_rnn", "basic")
    assert capsys.readouterr().out.count("\n") == 1
