"""The notebook-01 grading checks: right answers pass however written, wrong ones fail with the right message."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import convolution as C
from course_utils.grading import EXERCISES, check, use_or_reference
from grading_helpers import failure_message, passes_everything, wrong_variant_tests

IDS = ["count_parameters", "extract_patch", "conv1d_matrix", "locally_connected1d", "conv1d", "conv2d",
       "true_convolution1d"]


def test_every_curriculum_exercise_is_registered():
    assert set(IDS) <= set(EXERCISES)
    for eid in IDS:
        assert set(EXERCISES[eid].parts) == {"basic", "edge"}


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_logic_passes(exercise_id):
    passes_everything(EXERCISES[exercise_id].reference.__wrapped__, exercise_id)


# ---------------------------------------------------------------------------------------------
# Correct implementations written differently from the references: all must pass.


def count_loops(h, w, c, c_out, k, bias=False):
    s = 2 * k + 1
    fc = 0
    for _ in range(h * w * c):
        fc += h * w * c_out
    counts = {"fully_connected": fc, "locally_connected": int(np.prod([h, w, s, s, c, c_out])),
              "convolutional": s * s * c * c_out}
    if bias:
        counts = {key: value + extra for (key, value), extra in zip(counts.items(), (h * w * c_out, h * w * c_out,
                                                                                       c_out))}
    return counts


def patch_loops(x, i, j, k):
    c, h, w = x.shape
    out = torch.zeros(c, 2 * k + 1, 2 * k + 1, dtype=x.dtype)
    for a in range(-k, k + 1):
        for b in range(-k, k + 1):
            if 0 <= i + a < h and 0 <= j + b < w:
                out[:, a + k, b + k] = x[:, i + a, j + b]
    return out


def matrix_loops(kernel, n, padding="same"):
    s = len(kernel)
    k = s // 2
    n_out = n if padding == "same" else n - 2 * k
    M = torch.zeros(n_out, n, dtype=kernel.dtype)
    for t in range(n_out):
        for j in range(s):
            col = t + j - (k if padding == "same" else 0)
            if 0 <= col < n:
                M[t, col] = kernel[j]
    return M


def matrix_from_identity(kernel, n, padding="same"):
    """Columns of M are the layer applied to the unit vectors (uses F.conv1d: allowed here)."""
    eye = torch.eye(n, dtype=kernel.dtype)[:, None, :]  # (n, 1, n)
    return F.conv1d(eye, kernel[None, None], padding=padding)[:, 0, :].T


def local_loops(x, weight, bias=None):
    B, c_in, L = x.shape
    c_out, s = weight.shape[1], weight.shape[3]
    k = s // 2
    xpad = torch.cat([x.new_zeros(B, c_in, k), x, x.new_zeros(B, c_in, k)], dim=2)
    out = x.new_zeros(B, c_out, L)
    for t in range(L):
        for o in range(c_out):
            out[:, o, t] = (xpad[:, :, t:t + s] * weight[t, o]).sum(dim=(1, 2))
            if bias is not None:
                out[:, o, t] += bias[t, o]
    return out


def conv1d_loops(x, weight, bias=None, padding="same"):
    B, c_in, L = x.shape
    c_out, _, s = weight.shape
    k = s // 2
    if padding == "same":
        x = F.pad(x, (k, k))
    L_out = x.shape[2] - s + 1
    out = torch.zeros(B, c_out, L_out, dtype=x.dtype)
    for t in range(L_out):
        out[:, :, t] = torch.einsum("bcj,ocj->bo", x[:, :, t:t + s], weight)
    return out if bias is None else out + bias.view(1, -1, 1)


def conv1d_numpy(x, weight, bias=None, padding="same"):
    """Computed in numpy float64 whatever the input, then cast back: allowed."""
    xn, wn = x.double().numpy(), weight.double().numpy()
    out = np.stack([np.stack([sum(np.correlate(xn[b, c], wn[o, c], mode=padding) for c in range(xn.shape[1]))
                              for o in range(wn.shape[0])]) for b in range(xn.shape[0])])
    out = torch.from_numpy(out).to(x.dtype)
    return out if bias is None else out + bias[:, None]


def conv2d_unfold(x, weight, bias=None, padding="same"):
    c_out, c_in, s_h, s_w = weight.shape
    pad = (s_h // 2, s_w // 2) if padding == "same" else (0, 0)
    H_out, W_out = x.shape[2] + 2 * pad[0] - s_h + 1, x.shape[3] + 2 * pad[1] - s_w + 1
    cols = F.unfold(x, (s_h, s_w), padding=pad)  # (B, c_in*s_h*s_w, H_out*W_out)
    out = (weight.reshape(c_out, -1) @ cols).reshape(x.shape[0], c_out, H_out, W_out)
    return out if bias is None else out + bias[None, :, None, None]


def conv2d_loops(x, weight, bias=None, padding="same"):
    s_h, s_w = weight.shape[2:]
    if padding == "same":
        x = F.pad(x, (s_w // 2, s_w // 2, s_h // 2, s_h // 2))
    H_out, W_out = x.shape[2] - s_h + 1, x.shape[3] - s_w + 1
    out = torch.zeros(x.shape[0], weight.shape[0], H_out, W_out, dtype=x.dtype)
    for i in range(s_h):
        for j in range(s_w):
            out += torch.einsum("bchw,oc->bohw", x[:, :, i:i + H_out, j:j + W_out], weight[:, :, i, j])
    return out if bias is None else out + bias[:, None, None]


def true_conv_numpy(x, kernel):
    return torch.from_numpy(np.convolve(x.numpy(), kernel.numpy(), mode="same"))


def true_conv_loops(x, kernel):
    n, s = len(x), len(kernel)
    k = s // 2
    out = torch.zeros_like(x)
    for t in range(n):
        for j in range(s):
            if 0 <= t + k - j < n:  # numpy's 'same' output t is full-convolution index t + k
                out[t] += x[t + k - j] * kernel[j]
    return out


CORRECT = [("count_parameters", count_loops), ("extract_patch", patch_loops), ("conv1d_matrix", matrix_loops),
           ("conv1d_matrix", matrix_from_identity), ("locally_connected1d", local_loops),
           ("conv1d", conv1d_loops), ("conv1d", conv1d_numpy), ("conv2d", conv2d_unfold), ("conv2d", conv2d_loops),
           ("true_convolution1d", true_conv_numpy), ("true_convolution1d", true_conv_loops)]


@pytest.mark.parametrize("exercise_id, fn", CORRECT, ids=[f"{e}-{f.__name__}" for e, f in CORRECT])
def test_other_correct_implementations_pass(exercise_id, fn):
    passes_everything(fn, exercise_id)


# ---------------------------------------------------------------------------------------------
# Wrong implementations: each fails, and the message says what is wrong.


def counts(fc, lc, conv, bias_terms=None):
    """A count_parameters built from three formulas in (h, w, c, c_out, s) and optional bias terms."""
    def count(h, w, c, c_out, k, bias=False):
        s = 2 * k + 1
        out = {"fully_connected": fc(h, w, c, c_out, s), "locally_connected": lc(h, w, c, c_out, s),
               "convolutional": conv(h, w, c, c_out, s)}
        if bias:
            extra = bias_terms(h, w, c, c_out) if bias_terms else (h * w * c_out, h * w * c_out, c_out)
            out = {key: value + e for (key, value), e in zip(out.items(), extra)}
        return out
    return count


def FC(h, w, c, co, s):
    return (h * w) ** 2 * c * co


def LC(h, w, c, co, s):
    return h * w * s * s * c * co


def CONV(h, w, c, co, s):
    return s * s * c * co


def count_with_k_as_size(h, w, c, c_out, k, bias=False):
    return counts(FC, lambda h, w, c, co, s: h * w * k * k * c * co, lambda h, w, c, co, s: k * k * c * co)(
        h, w, c, c_out, k, bias)


def count_floats(h, w, c, c_out, k, bias=False):
    return {key: float(v) for key, v in counts(FC, LC, CONV)(h, w, c, c_out, k, bias).items()}


def patch_clipped(x, i, j, k):
    return x[:, max(0, i - k):i + k + 1, max(0, j - k):j + k + 1].clone()


def matrix_circular(kernel, n, padding="same"):
    k = len(kernel) // 2
    M = torch.zeros(n, n, dtype=kernel.dtype)
    for t in range(n):
        for j in range(len(kernel)):
            M[t, (t + j - k) % n] = kernel[j]
    return M


def local_tied(x, weight, bias=None):
    return local_loops(x, weight[0].expand_as(weight), bias)


def local_bias_reshaped(x, weight, bias=None):
    out = local_loops(x, weight)
    return out if bias is None else out + bias.reshape(bias.shape[1], bias.shape[0])


def local_valid(x, weight, bias=None):
    patches = x.unfold(2, weight.shape[-1], 1)  # no padding: (B, C_in, L - 2k, s)
    k = weight.shape[-1] // 2
    return torch.einsum("bctj,tocj->bot", patches, weight[k:weight.shape[0] - k])


def conv1d_with_bias_per_input_channel(x, weight, bias=None, padding="same"):
    out = conv1d_loops(x, weight, None, padding)
    return out if bias is None else out + x.shape[1] * bias[:, None]


def conv1d_wrong_dtype(x, weight, bias=None, padding="same"):
    return conv1d_loops(x.float(), weight.float(), None if bias is None else bias.float(), padding)


def conv1d_in_place_padding(x, weight, bias=None, padding="same"):
    out = conv1d_loops(x, weight, bias, padding)
    x.zero_()
    return out


def conv2d_swapped_padding(x, weight, bias=None, padding="same"):
    s_h, s_w = weight.shape[2:]
    if padding == "same":
        x = F.pad(x, (s_h // 2, s_h // 2, s_w // 2, s_w // 2))
    return conv2d_loops(x, weight, bias, "valid")


def conv2d_forbidden(x, weight, bias=None, padding="same"):
    return torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], padding=padding, bias=False,
                           dtype=x.dtype)._conv_forward(x, weight, bias)


WRONG = {"count_parameters": [
    (counts(FC, lambda h, w, c, co, s: h * w * s * c * co, lambda h, w, c, co, s: s * c * co), "s*s pixels"),
    (count_with_k_as_size, "half-width"),
    (counts(lambda h, w, c, co, s: h * w * c * co, LC, CONV), "squared"),
    (counts(FC, LC, CONV, lambda h, w, c, co: (0, 0, 0)), "with bias=True every output unit has a bias"),
    (counts(FC, LC, CONV, lambda h, w, c, co: (h * w * co, h * w * co, h * w * co)), "shares its bias"),
    (counts(FC, LC, CONV, lambda h, w, c, co: (h * w * c, h * w * c, c)), "output channels c'"),
    (count_floats, "counts are ints"),
    (lambda h, w, c, c_out, k, bias=False: [FC(h, w, c, c_out, 2 * k + 1)], "should be a dict"),
]}
WRONG["extract_patch"] = [
    (patch_clipped, "pixels outside the image count as zeros"),
    (lambda x, i, j, k: patch_loops(x, j, i, k), "rows and columns are swapped"),
    (lambda x, i, j, k: F.pad(x, (0, 2 * k + 1, 0, 2 * k + 1))[:, i:i + 2 * k + 1, j:j + 2 * k + 1],
     "centred on (i, j)"),
    (lambda x, i, j, k: patch_loops(x, i, j, k).permute(1, 2, 0), "channels come first"),
    (lambda x, i, j, k: F.pad(x, (k, k, k, k))[:, i:i + 2 * k, j:j + 2 * k], "s = 2k + 1 pixels"),
    (lambda x, i, j, k: patch_loops(x.float(), i, j, k), "dtype float32, expected float64"),
    (lambda x, i, j, k: patch_loops(x, i, j, k) * 0 if k else patch_loops(x, i, j, k), "values are off"),
]
WRONG["conv1d_matrix"] = [
    (lambda kernel, n, padding="same": matrix_loops(kernel.flip(0), n, padding), "kernel is flipped"),
    (lambda kernel, n, padding="same": matrix_loops(kernel, n, padding).T, "matrix is transposed"),
    (lambda kernel, n, padding="same": matrix_loops(kernel, n, "valid"), "same and valid are swapped"),
    (matrix_circular, "wrap around"),
    (lambda kernel, n, padding="same": torch.stack([F.pad(kernel, (t, n - t))[:n] for t in range(n)]),
     "centred on its output position"),
    (lambda kernel, n, padding="same": matrix_loops(kernel, n, padding).double(), "dtype"),
]
WRONG["locally_connected1d"] = [
    (local_tied, "its own weights"),
    (lambda x, w, b=None: local_loops(x, w.flip(-1), b), "kernel is flipped"),
    (lambda x, w, b=None: local_loops(x, w), "bias is missing"),
    (local_bias_reshaped, "reshape keeps the memory order"),
    (lambda x, w, b=None: local_loops(x, w.flip(0), b), "not from the end"),
    (local_valid, "same padding"),
]
WRONG["conv1d"] = [
    (lambda x, w, b=None, padding="same": conv1d_loops(x, w.flip(-1), b, padding), "true convolution"),
    (lambda x, w, b=None, padding="same": conv1d_loops(x, w, b, "same"), "same and valid padding are mixed up"),
    (lambda x, w, b=None, padding="same": conv1d_loops(x, w, None, padding), "bias is missing"),
    (lambda x, w, b=None, padding="same": conv1d_loops(x, w.transpose(0, 1), b, padding), "raised RuntimeError"),
    (conv1d_with_bias_per_input_channel, "once per input channel"),
    (conv1d_wrong_dtype, "keep the input's dtype"),
    (conv1d_in_place_padding, "changed its input tensors in place"),
    (lambda x, w, b=None, padding="same": F.conv1d(x, w, b, padding=padding), "torch.nn.functional.conv1d"),
    (lambda x, w, b=None, padding="same": C.conv1d(x, w, b, padding), "course's reference"),
]
WRONG["conv2d"] = [
    (lambda x, w, b=None, padding="same": conv2d_loops(x, w.flip(-1, -2), b, padding), "kernel is flipped"),
    (lambda x, w, b=None, padding="same": conv2d_loops(x, w, b, "valid" if padding == "same" else "same"),
     "same and valid padding are mixed up"),
    (lambda x, w, b=None, padding="same": conv2d_loops(x, w, None, padding), "bias is missing"),
    (lambda x, w, b=None, padding="same": conv2d_loops(x, w.transpose(0, 1), b, padding), "raised RuntimeError"),
    (lambda x, w, b=None, padding="same": conv2d_loops(x, w.transpose(-1, -2), b, padding),
     "rows and columns are swapped"),
    (conv2d_swapped_padding, "half-widths are swapped"),
    (conv2d_forbidden, "torch.nn.functional.conv2d"),
    (lambda x, w, b=None, padding="same": torch.ops.aten.convolution(x, w, b, [1, 1], [w.shape[2] // 2,
                                                                                      w.shape[3] // 2]
                                                                     if padding == "same" else [0, 0],
                                                                     [1, 1], False, [0, 0], 1),
     "convolution"),
]
WRONG["true_convolution1d"] = [
    (lambda x, kernel: C._correlate_same(x, kernel), "that is cross-correlation"),
    (lambda x, kernel: C._correlate_same(x.flip(0), kernel), "flip the kernel, not the signal"),
    (lambda x, kernel: torch.from_numpy(np.convolve(x.numpy(), kernel.numpy(), mode="valid")).to(x.dtype),
     "keeps the length n"),
    (lambda x, kernel: torch.from_numpy(np.convolve(x.numpy(), kernel.numpy(), mode="full")).to(x.dtype),
     "centre part of the full convolution"),
    (lambda x, kernel: torch.roll(true_conv_loops(x, kernel), 1), "shifted by one position"),
    (lambda x, kernel: true_conv_numpy(x, kernel).double(), "dtype float64, expected float32"),
]


test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation = \
    wrong_variant_tests(IDS, WRONG)


def test_value_failure_reports_case_error_and_position():
    message = failure_message(lambda x, w, b=None, padding="same": conv1d_loops(x, w, b, padding) + 0.5, "conv1d")
    assert "largest error is 0.5" in message and "at index (" in message and "tolerance" in message


def test_square_channel_case_names_the_transposed_weight():
    message = None
    try:
        check(lambda x, w, b=None, padding="same": conv1d_loops(x, w.transpose(0, 1), b, padding), "conv1d",
              "basic", hidden=True)
    except AssertionError as error:
        message = str(error)
    assert message and "weight is transposed" in message


def test_float64_computed_in_float32_is_explained():
    def sloppy(x, w, b=None, padding="same"):
        return conv1d_loops(x.float(), w.float(), None if b is None else b.float(), padding).to(x.dtype)
    message = failure_message(sloppy, "conv1d")
    assert "float32 precision only" in message


def test_not_implemented_propagates_unchanged():
    def stub(x, w, b=None, padding="same"):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):
        check(stub, "conv1d")


def test_crash_is_reported_with_the_case():
    message = failure_message(lambda x, w, b=None, padding="same": x[5, 5, 5], "conv1d")
    assert "raised IndexError" in message and "case '" in message


def test_forbidden_op_reached_through_a_module_is_named():
    def via_module(x, w, b=None, padding="same"):
        layer = torch.nn.Conv1d(w.shape[1], w.shape[0], w.shape[2], padding=padding, dtype=x.dtype)
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(b if b is not None else torch.zeros_like(layer.bias))
        return layer(x).detach()
    assert "torch.nn.functional.conv1d" in failure_message(via_module, "conv1d")


def test_reference_captured_before_grading_is_still_forbidden():
    captured = C.conv2d  # bound before check() runs

    def sneaky(x, w, b=None, padding="same"):
        return captured(x, w, b, padding)
    assert "course's reference `course_utils.convolution.conv2d`" in failure_message(sneaky, "conv2d")


def test_success_prints_one_line(capsys):
    check(conv1d_loops, "conv1d", "basic")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "conv1d (basic)" in out


def test_use_or_reference(capsys):
    assert use_or_reference(conv1d_loops, "conv1d") is conv1d_loops
    assert "Using your conv1d" in capsys.readouterr().out

    def stub(x, w, b=None, padding="same"):
        raise NotImplementedError()
    fallback = use_or_reference(stub, "conv1d")
    assert "reference is used" in capsys.readouterr().out
    x, w = torch.randn(1, 2, 5), torch.randn(3, 2, 3)
    torch.testing.assert_close(fallback(x, w), F.conv1d(x, w, padding="same"))
    fallback_wrong = use_or_reference(lambda x, w, b=None, padding="same": conv1d_loops(x, w.flip(-1), b, padding),
                                      "conv1d")
    torch.testing.assert_close(fallback_wrong(x, w), F.conv1d(x, w, padding="same"))
