"""Cases, forbidden calls and known mistakes for notebook 01 (fully-connected -> convolution)."""
import torch
import torch.nn.functional as F

from .. import convolution as ref
from ..grading import Exercise, Variant, register

F32, F64 = torch.float32, torch.float64


def randn(gen, *shape, dtype=F32):
    return torch.randn(*shape, generator=gen, dtype=F64).to(dtype)


def randint(gen, low, high):
    """One int in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def odd(gen, low, high):
    """One odd kernel size in [low, high]."""
    return 2 * randint(gen, (low - 1) // 2, (high - 1) // 2) + 1


CONV_FORBIDDEN = {
    F.conv1d: "torch.nn.functional.conv1d",
    F.conv2d: "torch.nn.functional.conv2d",
    F.conv3d: "torch.nn.functional.conv3d",
    F.conv_transpose1d: "torch.nn.functional.conv_transpose1d",
    F.conv_transpose2d: "torch.nn.functional.conv_transpose2d",
    torch.convolution: "torch.convolution",
    torch._convolution: "torch._convolution",
}
CONV_ATEN = r"^_?(convolution|conv\d|conv_|cudnn_conv|mkldnn_conv|miopen_conv|_?slow_conv|thnn_conv|_nnpack)"


# ---------------------------------------------------------------------------------------------
# count_parameters


def _count_variant(fc, lc, conv, bias_terms=lambda h, w, c, co: (h * w * co, h * w * co, co)):
    def variant(h, w, c, c_out, k, bias=False):
        counts = {"fully_connected": fc(h, w, c, c_out, 2 * k + 1), "locally_connected": lc(h, w, c, c_out, 2 * k + 1),
                  "convolutional": conv(h, w, c, c_out, 2 * k + 1)}
        if bias:
            for key, extra in zip(counts, bias_terms(h, w, c, c_out)):
                counts[key] += extra
        return counts
    return variant


_FC = lambda h, w, c, co, s: (h * w) ** 2 * c * co  # noqa: E731
_LC = lambda h, w, c, co, s: h * w * s * s * c * co  # noqa: E731
_CONV = lambda h, w, c, co, s: s * s * c * co  # noqa: E731

register(Exercise(
    id="count_parameters",
    cases={
        "the slides' 1024x1024 RGB image, k=1": lambda g: (1024, 1024, 3, 3, 1),
        "a 4x4 grey image, k=1": lambda g: (4, 4, 1, 1, 1),
        "5x7 image, 3 -> 2 channels, k=1, bias": lambda g: (5, 7, 3, 2, 1, True),
        "k=0 (1x1 kernel)": lambda g: (6, 5, 2, 3, 0),
        "k=0 with bias": lambda g: (6, 5, 2, 3, 0, True),
        "non-square 3x8 image, k=2, bias": lambda g: (3, 8, 4, 5, 2, True),
        "28x28 grey, 1 -> 8 channels, k=2": lambda g: (28, 28, 1, 8, 2),
    },
    parts={
        "basic": {"visible": ["a 4x4 grey image, k=1", "the slides' 1024x1024 RGB image, k=1"],
                  "hidden": ["28x28 grey, 1 -> 8 channels, k=2"], "random": 4},
        "edge": {"visible": ["5x7 image, 3 -> 2 channels, k=1, bias"],
                 "hidden": ["k=0 (1x1 kernel)", "k=0 with bias", "non-square 3x8 image, k=2, bias"], "random": 4},
    },
    random_case=lambda g, dtype: (randint(g, 1, 12), randint(g, 1, 12), randint(g, 1, 4), randint(g, 1, 4),
                                  randint(g, 0, 3), bool(randint(g, 0, 1))),
    variants=[
        Variant(_count_variant(_FC, lambda h, w, c, co, s: h * w * s * c * co, lambda h, w, c, co, s: s * c * co),
                "a patch has s*s pixels (s = 2k+1 in both height and width), not s."),
        Variant(_count_variant(_FC, lambda h, w, c, co, s: h * w * (s // 2) ** 2 * c * co,
                               lambda h, w, c, co, s: (s // 2) ** 2 * c * co),
                "k is the half-width; the kernel size is s = 2k + 1."),
        Variant(_count_variant(lambda h, w, c, co, s: h * w * c * co, _LC, _CONV),
                "a fully-connected layer connects every one of the h*w*c inputs to every one of the h*w*c' "
                "outputs, so the count has (h*w) squared."),
        Variant(_count_variant(_FC, _LC, _CONV, lambda h, w, c, co: (0, 0, 0)),
                "with bias=True every output unit has a bias: add h*w*c' (fully and locally connected) and c' "
                "(convolutional)."),
        Variant(_count_variant(_FC, _LC, _CONV, lambda h, w, c, co: (h * w * co, h * w * co, h * w * co)),
                "a convolution shares its bias across positions too: one bias per output channel, c' in total."),
        Variant(_count_variant(_FC, _LC, _CONV, lambda h, w, c, co: (h * w * c, h * w * c, c)),
                "biases belong to the outputs, so they count output channels c', not input channels c."),
        Variant(_count_variant(_FC, _CONV, _LC),
                "the locally-connected layer has a separate kernel at each of the h*w positions, and the "
                "convolution one shared kernel: the two counts are swapped."),
    ],
))


# ---------------------------------------------------------------------------------------------
# extract_patch


def _patch_case(c, h, w, i, j, k, dtype=F32):
    return lambda g: (randn(g, c, h, w, dtype=dtype), i, j, k)


def _patch_random(g, dtype):
    h, w = randint(g, 1, 9), randint(g, 1, 9)
    return randn(g, randint(g, 1, 3), h, w, dtype=dtype), randint(g, 0, h - 1), randint(g, 0, w - 1), randint(g, 0, 3)


def _clipped_patch(x, i, j, k):
    return x[:, max(i - k, 0):i + k + 1, max(j - k, 0):j + k + 1]


def _corner_patch(x, i, j, k):
    s = 2 * k + 1
    return F.pad(x, (0, s, 0, s))[:, i:i + s, j:j + s]


def _wrapped_patch(x, i, j, k):
    s = 2 * k + 1
    rows = (torch.arange(s) + i - k) % x.shape[1]
    cols = (torch.arange(s) + j - k) % x.shape[2]
    return x[:, rows][:, :, cols]


register(Exercise(
    id="extract_patch",
    cases={
        "centre of a 3-channel 6x7 image, k=1": _patch_case(3, 6, 7, 3, 3, 1),
        "top-left corner, k=2": _patch_case(2, 6, 7, 0, 0, 2),
        "bottom-right corner, k=1": _patch_case(1, 5, 8, 4, 7, 1),
        "k=0 (a single pixel)": _patch_case(3, 4, 4, 2, 1, 0),
        "non-square 4x9 image near the right edge, k=2": _patch_case(2, 4, 9, 1, 8, 2),
        "patch larger than the image, k=3": _patch_case(1, 3, 2, 1, 0, 3),
        "float64 image, k=1": _patch_case(3, 5, 6, 2, 4, 1, dtype=F64),
    },
    parts={
        "basic": {"visible": ["centre of a 3-channel 6x7 image, k=1"],
                  "hidden": ["float64 image, k=1"], "random": 4},
        "edge": {"visible": ["top-left corner, k=2"],
                 "hidden": ["bottom-right corner, k=1", "k=0 (a single pixel)",
                            "non-square 4x9 image near the right edge, k=2",
                            "patch larger than the image, k=3"], "random": 6},
    },
    random_case=_patch_random,
    variants=[
        Variant(_clipped_patch, "near the border the patch still has shape (c, s, s): the pixels outside the "
                                "image count as zeros (zero padding), they are not cut off."),
        Variant(lambda x, i, j, k: ref.extract_patch.__wrapped__(x, j, i, k),
                "rows and columns are swapped: i indexes the height (dim 1) and j the width (dim 2)."),
        Variant(_corner_patch, "the patch is centred on (i, j), from i-k to i+k, not started at (i, j)."),
        Variant(_wrapped_patch, "pixels outside the image are zeros; the patch must not wrap around to the "
                                "opposite edge."),
        Variant(lambda x, i, j, k: ref.extract_patch.__wrapped__(x, i, j, k).permute(1, 2, 0),
                "channels come first: the patch is (c, s, s), not (s, s, c)."),
        Variant(lambda x, i, j, k: F.pad(x, (k, k, k, k))[:, i:i + 2 * k, j:j + 2 * k],
                "the patch from i-k to i+k includes both ends: s = 2k + 1 pixels, not 2k."),
    ],
))


# ---------------------------------------------------------------------------------------------
# conv1d_matrix


def _matrix_case(s, n, padding="same", dtype=F32):
    return lambda g: (randn(g, s, dtype=dtype), n, padding)


def _matrix_random(g, dtype):
    s = odd(g, 1, 7)
    padding = ("same", "valid")[randint(g, 0, 1)]
    return randn(g, s, dtype=dtype), randint(g, s, 12), padding


def _circular_matrix(kernel, n, padding="same"):
    s = kernel.shape[0]
    k = s // 2
    M = torch.zeros(n, n, dtype=kernel.dtype)
    for t in range(n):
        for j in range(s):
            M[t, (t - k + j) % n] += kernel[j]
    return M


def _unshifted_matrix(kernel, n, padding="same"):
    s = kernel.shape[0]
    M = torch.zeros(n, n, dtype=kernel.dtype)
    for t in range(n):
        for j in range(s):
            if t + j < n:
                M[t, t + j] = kernel[j]
    return M


_other_padding = {"same": "valid", "valid": "same"}

register(Exercise(
    id="conv1d_matrix",
    cases={
        "the slides' example: 4 inputs, s=3, same": _matrix_case(3, 4),
        "6 inputs, s=3, valid": _matrix_case(3, 6, "valid"),
        "k=0 (s=1), same": _matrix_case(1, 5),
        "s=5 on 5 inputs, same": _matrix_case(5, 5),
        "s=5 on 5 inputs, valid (one output)": _matrix_case(5, 5, "valid"),
        "float64 kernel, s=3, 7 inputs, same": _matrix_case(3, 7, dtype=F64),
        "s=7 on 9 inputs, valid": _matrix_case(7, 9, "valid"),
    },
    parts={
        "basic": {"visible": ["the slides' example: 4 inputs, s=3, same"],
                  "hidden": ["float64 kernel, s=3, 7 inputs, same"], "random": 4},
        "edge": {"visible": ["6 inputs, s=3, valid"],
                 "hidden": ["k=0 (s=1), same", "s=5 on 5 inputs, same", "s=5 on 5 inputs, valid (one output)",
                            "s=7 on 9 inputs, valid"], "random": 6},
    },
    random_case=_matrix_random,
    variants=[
        Variant(lambda kernel, n, padding="same": ref.conv1d_matrix.__wrapped__(kernel.flip(0), n, padding),
                "the kernel is flipped: a layer's convolution is cross-correlation, M[t, t-k+j] = kernel[j]; "
                "flipping belongs to true convolution."),
        Variant(lambda kernel, n, padding="same": ref.conv1d_matrix.__wrapped__(kernel, n, padding).T,
                "the matrix is transposed: rows are outputs (n_out of them) and columns are inputs (n)."),
        Variant(lambda kernel, n, padding="same": ref.conv1d_matrix.__wrapped__(kernel, n, _other_padding[padding]),
                "same and valid are swapped: 'same' keeps n outputs (k zeros on each side), 'valid' has "
                "n - 2k outputs and no padding."),
        Variant(_circular_matrix, "taps that fall outside the input hit zero padding and vanish; they must not "
                                  "wrap around to the other end (that would be circular padding)."),
        Variant(_unshifted_matrix, "each row is centred on its output position: the kernel starts at input "
                                   "t - k, not at t."),
    ],
))


# ---------------------------------------------------------------------------------------------
# locally_connected1d


def _local_case(B, c_in, c_out, L, s, bias=True, dtype=F32):
    return lambda g: (randn(g, B, c_in, L, dtype=dtype), randn(g, L, c_out, c_in, s, dtype=dtype),
                      randn(g, L, c_out, dtype=dtype) if bias else None)


def _local_random(g, dtype):
    B, c_in, c_out, L, s = randint(g, 1, 3), randint(g, 1, 3), randint(g, 1, 3), randint(g, 1, 8), odd(g, 1, 5)
    return _local_case(B, c_in, c_out, L, s, bool(randint(g, 0, 1)), dtype)(g)


def _lc_loop(x, weight, bias=None):
    """Slow, obvious version used to build wrong variants from."""
    return ref.locally_connected1d.__wrapped__(x, weight, bias)


register(Exercise(
    id="locally_connected1d",
    cases={
        "the slides' example: 4 pixels, 1 channel, s=3, no bias": _local_case(1, 1, 1, 4, 3, bias=False),
        "2 sequences, 3 -> 2 channels, length 7, s=3, bias": _local_case(2, 3, 2, 7, 3),
        "k=0 (s=1)": _local_case(2, 2, 3, 5, 1),
        "kernel wider than the sequence: s=5, length 3": _local_case(1, 2, 2, 3, 5),
        "float64, 2 -> 2 channels, s=3": _local_case(3, 2, 2, 6, 3, dtype=F64),
        "length 1": _local_case(2, 2, 1, 1, 3),
    },
    parts={
        "basic": {"visible": ["the slides' example: 4 pixels, 1 channel, s=3, no bias"],
                  "hidden": ["2 sequences, 3 -> 2 channels, length 7, s=3, bias"], "random": 4},
        "edge": {"visible": ["2 sequences, 3 -> 2 channels, length 7, s=3, bias"],
                 "hidden": ["k=0 (s=1)", "kernel wider than the sequence: s=5, length 3",
                            "float64, 2 -> 2 channels, s=3", "length 1"], "random": 6},
    },
    random_case=_local_random,
    variants=[
        Variant(lambda x, w, b=None: _lc_loop(x, w[:1].expand_as(w), b),
                "every position t has its own weights weight[t]: using one kernel everywhere is a convolution."),
        Variant(lambda x, w, b=None: _lc_loop(x, w.flip(-1), b),
                "the kernel is flipped: weight[t, o, c, j] multiplies xpad[b, c, t + j], with j counting forward."),
        Variant(lambda x, w, b=None: _lc_loop(x, w, None), "the bias is missing: add bias[t, o] to out[b, o, t]."),
        Variant(lambda x, w, b=None: _lc_loop(x, w, None) + (b.reshape(b.shape[1], b.shape[0]) if b is not None
                                                              else 0),
                "bias has shape (L, C_out) and out[b, o, t] gets bias[t, o]: transpose it (reshape keeps the "
                "memory order and mixes positions with channels)."),
        Variant(lambda x, w, b=None: _lc_loop(x, w.flip(0), b),
                "position t uses weight[t], counted from the start of the sequence, not from the end."),
        Variant(lambda x, w, b=None: torch.einsum("bctj,tocj->bot", x.unfold(2, w.shape[-1], 1),
                                                  w[w.shape[-1] // 2: w.shape[0] - w.shape[-1] // 2])
                + (b[w.shape[-1] // 2: b.shape[0] - w.shape[-1] // 2].T if b is not None else 0),
                "the layer uses same padding: k zeros on each side, so the output has as many positions as "
                "the input."),
    ],
))


# ---------------------------------------------------------------------------------------------
# conv1d


def _conv1d_case(B, c_in, c_out, L, s, bias=True, padding="same", dtype=F32):
    return lambda g: (randn(g, B, c_in, L, dtype=dtype), randn(g, c_out, c_in, s, dtype=dtype),
                      randn(g, c_out, dtype=dtype) if bias else None, padding)


def _conv1d_random(g, dtype):
    s = odd(g, 1, 7)
    padding = ("same", "valid")[randint(g, 0, 1)]
    L = randint(g, s, 12)  # numpy's 'same' modes differ from torch's when the kernel is longer than the signal
    return _conv1d_case(randint(g, 1, 3), randint(g, 1, 4), randint(g, 1, 4), L, s,
                        bool(randint(g, 0, 1)), padding, dtype)(g)


def _conv1d(x, w, b=None, padding="same"):
    return ref.conv1d.__wrapped__(x, w, b, padding)


register(Exercise(
    id="conv1d",
    cases={
        "one 4-pixel sequence, 1 channel, s=3, no bias": _conv1d_case(1, 1, 1, 4, 3, bias=False),
        "2 sequences, 3 -> 4 channels, length 9, s=3, bias": _conv1d_case(2, 3, 4, 9, 3),
        "3 -> 3 channels, s=5, bias": _conv1d_case(2, 3, 3, 8, 5),
        "valid padding, s=3": _conv1d_case(2, 2, 3, 7, 3, padding="valid"),
        "k=0 (s=1)": _conv1d_case(2, 3, 2, 5, 1),
        "kernel as long as the sequence, s=7, same": _conv1d_case(1, 2, 2, 7, 7),
        "valid padding, s = length (one output)": _conv1d_case(2, 2, 2, 5, 5, padding="valid"),
        "float64, 2 -> 3 channels, bias": _conv1d_case(3, 2, 3, 6, 3, dtype=F64),
    },
    parts={
        "basic": {"visible": ["one 4-pixel sequence, 1 channel, s=3, no bias",
                              "2 sequences, 3 -> 4 channels, length 9, s=3, bias"],
                  "hidden": ["3 -> 3 channels, s=5, bias", "float64, 2 -> 3 channels, bias"], "random": 6},
        "edge": {"visible": ["valid padding, s=3"],
                 "hidden": ["k=0 (s=1)", "kernel as long as the sequence, s=7, same",
                            "valid padding, s = length (one output)"], "random": 6},
    },
    random_case=_conv1d_random,
    forbidden=CONV_FORBIDDEN,
    forbidden_aten=CONV_ATEN,
    variants=[
        Variant(lambda x, w, b=None, padding="same": _conv1d(x, w.flip(-1), b, padding),
                "the kernel is flipped: nn.Conv1d computes cross-correlation (weight[o, c, j] meets "
                "xpad[b, c, t + j]); flipping the kernel gives true convolution."),
        Variant(lambda x, w, b=None, padding="same": _conv1d(x, w, b, _other_padding[padding]),
                "same and valid padding are mixed up: 'same' adds k zeros on each side and keeps the length, "
                "'valid' adds none and returns L - 2k positions."),
        Variant(lambda x, w, b=None, padding="same": _conv1d(x, w, None, padding),
                "the bias is missing: add bias[o] to every position of output channel o."),
        Variant(lambda x, w, b=None, padding="same": _conv1d(x, w.transpose(0, 1), b, padding),
                "the weight is transposed: it is (C_out, C_in, s), so weight[o, c] connects input channel c "
                "to output channel o."),
        Variant(lambda x, w, b=None, padding="same": _conv1d(x, w, b, padding) - (0 if b is None else b[:, None])
                + (0 if b is None else b[:, None] * w.shape[1]),
                "the bias is added once per input channel; it belongs once to each output value."),
    ],
))


# ---------------------------------------------------------------------------------------------
# conv2d


def _conv2d_case(B, c_in, c_out, H, W, s_h, s_w, bias=True, padding="same", dtype=F32):
    return lambda g: (randn(g, B, c_in, H, W, dtype=dtype), randn(g, c_out, c_in, s_h, s_w, dtype=dtype),
                      randn(g, c_out, dtype=dtype) if bias else None, padding)


def _conv2d_random(g, dtype):
    s_h, s_w = odd(g, 1, 5), odd(g, 1, 5)
    padding = ("same", "valid")[randint(g, 0, 1)]
    lo_h, lo_w = (s_h, s_w) if padding == "valid" else (1, 1)
    return _conv2d_case(randint(g, 1, 2), randint(g, 1, 3), randint(g, 1, 3), randint(g, lo_h, 9),
                        randint(g, lo_w, 9), s_h, s_w, bool(randint(g, 0, 1)), padding, dtype)(g)


def _conv2d(x, w, b=None, padding="same"):
    return ref.conv2d.__wrapped__(x, w, b, padding)


def _swapped_padding(x, w, b=None, padding="same"):
    """Pads the height by the width's half-width and vice versa."""
    if padding == "valid":
        return _conv2d(x, w, b, padding)
    k_h, k_w = (w.shape[-2] - 1) // 2, (w.shape[-1] - 1) // 2
    return _conv2d(F.pad(x, (k_h, k_h, k_w, k_w)), w, b, "valid")


register(Exercise(
    id="conv2d",
    cases={
        "one 5x5 grey image, 3x3 kernel, no bias": _conv2d_case(1, 1, 1, 5, 5, 3, 3, bias=False),
        "2 images 6x9, 3 -> 2 channels, 3x3, bias": _conv2d_case(2, 3, 2, 6, 9, 3, 3),
        "non-square kernel 3x5": _conv2d_case(2, 2, 3, 7, 8, 3, 5),
        "non-square kernel 5x1, valid": _conv2d_case(1, 2, 2, 6, 4, 5, 1, padding="valid"),
        "valid padding, 3x3": _conv2d_case(2, 2, 2, 6, 7, 3, 3, padding="valid"),
        "k=0 (1x1 kernel)": _conv2d_case(2, 3, 4, 4, 5, 1, 1),
        "kernel as large as the image, same": _conv2d_case(1, 1, 2, 5, 3, 5, 3),
        "float64, 3x3, bias": _conv2d_case(2, 2, 3, 5, 6, 3, 3, dtype=F64),
        "square kernel, 2 -> 2 channels (transposition check)": _conv2d_case(1, 2, 2, 6, 6, 3, 3),
    },
    parts={
        "basic": {"visible": ["one 5x5 grey image, 3x3 kernel, no bias", "2 images 6x9, 3 -> 2 channels, 3x3, bias"],
                  "hidden": ["square kernel, 2 -> 2 channels (transposition check)", "float64, 3x3, bias"],
                  "random": 6},
        "edge": {"visible": ["non-square kernel 3x5"],
                 "hidden": ["non-square kernel 5x1, valid", "valid padding, 3x3", "k=0 (1x1 kernel)",
                            "kernel as large as the image, same"], "random": 6},
    },
    random_case=_conv2d_random,
    forbidden=CONV_FORBIDDEN,
    forbidden_aten=CONV_ATEN,
    variants=[
        Variant(lambda x, w, b=None, padding="same": _conv2d(x, w.flip(-1, -2), b, padding),
                "the kernel is flipped in both directions: nn.Conv2d computes cross-correlation, "
                "weight[o, c, i, j] meets xpad[b, c, y + i, x + j]."),
        Variant(lambda x, w, b=None, padding="same": _conv2d(x, w, b, _other_padding[padding]),
                "same and valid padding are mixed up: 'same' adds k zeros on each side and keeps H x W, "
                "'valid' returns (H - 2k_h) x (W - 2k_w)."),
        Variant(lambda x, w, b=None, padding="same": _conv2d(x, w, None, padding),
                "the bias is missing: add bias[o] at every pixel of output channel o."),
        Variant(lambda x, w, b=None, padding="same": _conv2d(x, w.transpose(0, 1), b, padding),
                "the weight is transposed: it is (C_out, C_in, s_h, s_w), so weight[o, c] connects input "
                "channel c to output channel o."),
        Variant(lambda x, w, b=None, padding="same": _conv2d(x, w.transpose(-1, -2), b, padding),
                "the kernel's rows and columns are swapped: weight[..., i, j] has i along the height."),
        Variant(_swapped_padding, "the height needs k_h = (s_h - 1) / 2 zeros and the width k_w = (s_w - 1) / 2: "
                                  "the two half-widths are swapped."),
    ],
))


# ---------------------------------------------------------------------------------------------
# true_convolution1d


def _true_case(n, s, dtype=F32):
    return lambda g: (randn(g, n, dtype=dtype), randn(g, s, dtype=dtype))


def _true_random(g, dtype):
    s = odd(g, 1, 7)
    return _true_case(randint(g, s, 12), s, dtype)(g)


register(Exercise(
    id="true_convolution1d",
    cases={
        "5 samples, s=3": _true_case(5, 3),
        "an asymmetric kernel, 8 samples, s=5": _true_case(8, 5),
        "k=0 (s=1)": _true_case(4, 1),
        "kernel as long as the signal, s=n=5": _true_case(5, 5),
        "even length 6, s=3": _true_case(6, 3),
        "float64, 9 samples, s=3": _true_case(9, 3, dtype=F64),
    },
    parts={
        "basic": {"visible": ["5 samples, s=3"], "hidden": ["an asymmetric kernel, 8 samples, s=5",
                                                             "float64, 9 samples, s=3"], "random": 4},
        "edge": {"visible": ["kernel as long as the signal, s=n=5"],
                 "hidden": ["k=0 (s=1)", "even length 6, s=3"], "random": 6},
    },
    random_case=_true_random,
    variants=[
        Variant(lambda x, kernel: ref._correlate_same(x, kernel),
                "that is cross-correlation (what nn.Conv1d computes); true convolution flips the kernel: "
                "(x * kernel)[t] = sum_j x[t - j] kernel[j]."),
        Variant(lambda x, kernel: ref._correlate_same(x.flip(0), kernel),
                "flip the kernel, not the signal: flipping x reverses the output as well."),
        Variant(lambda x, kernel: ref.conv1d.__wrapped__(x[None, None], kernel.flip(0)[None, None],
                                                         None, "valid")[0, 0],
                "mode 'same' keeps the length n: pad k zeros on each side (no padding gives n - s + 1 values)."),
        Variant(lambda x, kernel: ref.conv1d.__wrapped__(F.pad(x, (kernel.shape[0] - 1,) * 2)[None, None],
                                                         kernel.flip(0)[None, None], None, "valid")[0, 0],
                "mode 'same' keeps the length n, the centre part of the full convolution (length n + s - 1)."),
        Variant(lambda x, kernel: torch.roll(ref._correlate_same(x, kernel.flip(0)), 1),
                "the output is shifted by one position: the kernel's centre, index k, lines up with x[t]."),
    ],
))
