"""From fully-connected to convolution: reference implementations for notebook 01.

Conventions: images are `(c, h, w)` (batched `(B, c, h, w)`), sequences `(B, C, L)`;
`k` is a half-width and `s = 2k + 1` the (odd) kernel size; "same" padding adds `k` zeros
on each side, "valid" adds none.
"""
import torch
import torch.nn.functional as F

from .reference import reference

PADDINGS = ("same", "valid")


def _half_width(s, what="kernel size"):
    if s % 2 != 1:
        raise ValueError(f"{what} must be odd (s = 2k + 1), got {s}")
    return (s - 1) // 2


def _check_padding(padding):
    if padding not in PADDINGS:
        raise ValueError(f'padding must be "same" or "valid", got {padding!r}')


@reference("count_parameters")
def count_parameters(h, w, c, c_out, k, bias=False):
    """Parameters of a layer mapping a `(c, h, w)` image to `(c_out, h, w)`, kernel size s = 2k+1.

    fully-connected (h w)^2 c c',  locally-connected h w s^2 c c',  convolutional s^2 c c';
    biases add h w c', h w c' and c'.
    """
    s = 2 * k + 1
    counts = {
        "fully_connected": (h * w) ** 2 * c * c_out,
        "locally_connected": h * w * s * s * c * c_out,
        "convolutional": s * s * c * c_out,
    }
    if bias:
        counts["fully_connected"] += h * w * c_out
        counts["locally_connected"] += h * w * c_out
        counts["convolutional"] += c_out
    return counts


@reference("extract_patch")
def extract_patch(x, i, j, k):
    """The patch P_k(i, j) = x[:, i-k : i+k+1, j-k : j+k+1] of x `(c, h, w)`, zeros outside: `(c, s, s)`."""
    s = 2 * k + 1
    xpad = F.pad(x, (k, k, k, k))  # (c, h + 2k, w + 2k); pixel (i, j) moves to (i + k, j + k)
    return xpad[:, i:i + s, j:j + s].clone()  # (c, s, s)


@reference("conv1d_matrix")
def conv1d_matrix(kernel, n, padding="same"):
    """The banded `(n_out, n)` matrix M with M @ x = cross-correlation of x `(n,)` with kernel `(s,)`.

    Row t holds the kernel starting at input position t - k ("same", n_out = n) or t ("valid",
    n_out = n - 2k): M[t, t - k + j] = kernel[j].
    """
    _check_padding(padding)
    s = kernel.shape[0]
    k = _half_width(s)
    shift = k if padding == "same" else 0
    n_out = n if padding == "same" else n - 2 * k
    if n_out < 1:
        raise ValueError(f"a kernel of size {s} does not fit in {n} inputs without padding")
    rows = torch.arange(n_out)[:, None].expand(n_out, s)           # (n_out, s)
    cols = rows + torch.arange(s)[None, :] - shift                 # (n_out, s) input index of each tap
    inside = (cols >= 0) & (cols < n)                               # taps that land on padding are dropped
    M = torch.zeros(n_out, n, dtype=kernel.dtype)
    M[rows[inside], cols[inside]] = kernel.expand(n_out, s)[inside]
    return M


def _patches1d(x, s, padding):
    """Sliding windows of x `(B, C, L)`: `(B, C, L_out, s)`."""
    k = _half_width(s)
    if padding == "same":
        x = F.pad(x, (k, k))  # (B, C, L + 2k)
    return x.unfold(2, s, 1)  # (B, C, L_out, s)


@reference("locally_connected1d")
def locally_connected1d(x, weight, bias=None):
    """Untied 1-D layer, same padding: out[b, o, t] = sum_{c,j} weight[t, o, c, j] xpad[b, c, t+j] + bias[t, o].

    x `(B, C_in, L)`, weight `(L, C_out, C_in, s)`, bias `(L, C_out)` -> `(B, C_out, L)`.
    """
    patches = _patches1d(x, weight.shape[-1], "same")               # (B, C_in, L, s)
    out = torch.einsum("bctj,tocj->bot", patches, weight)          # (B, C_out, L)
    if bias is not None:
        out = out + bias.T                                         # (C_out, L) broadcast over B
    return out


@reference("conv1d")
def conv1d(x, weight, bias=None, padding="same"):
    """Tied 1-D layer (what deep learning calls convolution): out[b, o, t] = sum_{c,j} weight[o, c, j] xpad[b, c, t+j] + bias[o].

    x `(B, C_in, L)`, weight `(C_out, C_in, s)`, bias `(C_out,)` -> `(B, C_out, L_out)`,
    L_out = L ("same") or L - 2k ("valid").
    """
    _check_padding(padding)
    patches = _patches1d(x, weight.shape[-1], padding)              # (B, C_in, L_out, s)
    out = torch.einsum("bctj,ocj->bot", patches, weight)           # (B, C_out, L_out)
    if bias is not None:
        out = out + bias[:, None]
    return out


@reference("conv2d")
def conv2d(x, weight, bias=None, padding="same"):
    """2-D cross-correlation: out[b, o, y, x] = sum_{c,i,j} weight[o, c, i, j] xpad[b, c, y+i, x+j] + bias[o].

    x `(B, C_in, H, W)`, weight `(C_out, C_in, s_h, s_w)`, bias `(C_out,)` -> `(B, C_out, H_out, W_out)`.
    """
    _check_padding(padding)
    s_h, s_w = weight.shape[-2:]
    k_h, k_w = _half_width(s_h, "kernel height"), _half_width(s_w, "kernel width")
    pad = (k_h, k_w) if padding == "same" else (0, 0)
    B, _, H, W = x.shape
    H_out, W_out = H + 2 * pad[0] - s_h + 1, W + 2 * pad[1] - s_w + 1
    patches = F.unfold(x, (s_h, s_w), padding=pad)                 # (B, C_in*s_h*s_w, H_out*W_out)
    out = weight.reshape(weight.shape[0], -1) @ patches            # (B, C_out, H_out*W_out)
    out = out.reshape(B, weight.shape[0], H_out, W_out)            # (B, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias[:, None, None]
    return out


@reference("true_convolution1d")
def true_convolution1d(x, kernel):
    """Convolution as signal processing defines it, (x * kernel)[t] = sum_j x[t - j] kernel[j], same length as x.

    x `(n,)`, kernel `(s,)` with odd s <= n -> `(n,)`; equals `numpy.convolve(x, kernel, mode="same")`.
    It is cross-correlation with the kernel flipped.
    """
    return _correlate_same(x, kernel.flip(0))


def _correlate_same(x, kernel):
    """Same-padded cross-correlation of two 1-D tensors: `(n,)`."""
    patches = _patches1d(x[None, None], kernel.shape[0], "same")[0, 0]  # (n, s)
    return patches @ kernel

