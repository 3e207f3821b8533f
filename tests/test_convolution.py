"""The notebook-01 references against torch and numpy oracles."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import convolution as C

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)


class LocallyConnected2d(nn.Module):
    """Only used to count parameters: one (c_out, c, s, s) kernel and one bias per output pixel."""

    def __init__(self, h, w, c, c_out, s, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(h, w, c_out, c, s, s))
        self.bias = nn.Parameter(torch.empty(h, w, c_out)) if bias else None


@pytest.mark.parametrize("h, w, c, c_out, k", [(4, 4, 1, 1, 1), (5, 7, 3, 2, 1), (6, 3, 2, 3, 0), (3, 8, 4, 5, 2)])
def test_count_parameters_equals_module_numel(h, w, c, c_out, k):
    s = 2 * k + 1
    modules = {
        "fully_connected": nn.Linear(h * w * c, h * w * c_out),
        "locally_connected": LocallyConnected2d(h, w, c, c_out, s, bias=True),
        "convolutional": nn.Conv2d(c, c_out, s, padding="same"),
    }
    counts = C.count_parameters(h, w, c, c_out, k, bias=True)
    assert counts == {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
    no_bias = C.count_parameters(h, w, c, c_out, k)
    assert no_bias["convolutional"] == nn.Conv2d(c, c_out, s, bias=False).weight.numel()
    assert no_bias["fully_connected"] == nn.Linear(h * w * c, h * w * c_out, bias=False).weight.numel()


def test_count_parameters_slides_number():
    assert C.count_parameters(1024, 1024, 3, 3, 1)["fully_connected"] == 9_895_604_649_984


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c, h, w, i, j, k", [(3, 6, 7, 3, 3, 1), (2, 6, 7, 0, 0, 2), (1, 5, 8, 4, 7, 1),
                                              (3, 4, 4, 2, 1, 0), (1, 3, 2, 1, 0, 3)])
def test_extract_patch_matches_unfold(dtype, c, h, w, i, j, k):
    x = torch.randn(c, h, w, dtype=dtype)
    s = 2 * k + 1
    cols = F.unfold(x[None], s, padding=k)  # (1, c*s*s, h*w): every patch, zero padded
    expected = cols[0, :, i * w + j].reshape(c, s, s)
    patch = C.extract_patch(x, i, j, k)
    assert patch.dtype == dtype and patch.shape == (c, s, s)
    torch.testing.assert_close(patch, expected)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("s, n", [(1, 4), (3, 4), (3, 7), (5, 5), (7, 9)])
def test_conv1d_matrix_reproduces_conv1d(padding, s, n):
    kernel, x = torch.randn(s, dtype=torch.float64), torch.randn(n, dtype=torch.float64)
    M = C.conv1d_matrix(kernel, n, padding)
    expected = F.conv1d(x[None, None], kernel[None, None], padding=padding)[0, 0]
    assert M.shape == (expected.shape[0], n)
    torch.testing.assert_close(M @ x, expected)


def test_conv1d_matrix_is_banded_and_tied():
    kernel = torch.tensor([1.0, 2.0, 3.0])
    M = C.conv1d_matrix(kernel, 4)
    expected = torch.tensor([[2.0, 3, 0, 0], [1, 2, 3, 0], [0, 1, 2, 3], [0, 0, 1, 2]])
    torch.testing.assert_close(M, expected)  # the slides' tied matrix with the padding columns removed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B, c_in, c_out, L, s", [(1, 1, 1, 4, 3), (2, 3, 2, 7, 3), (2, 2, 3, 5, 1), (1, 2, 2, 3, 5)])
def test_locally_connected1d_against_per_position_conv(dtype, B, c_in, c_out, L, s):
    x = torch.randn(B, c_in, L, dtype=dtype)
    weight, bias = torch.randn(L, c_out, c_in, s, dtype=dtype), torch.randn(L, c_out, dtype=dtype)
    out = C.locally_connected1d(x, weight, bias)
    # position t of an untied layer = position t of a convolution whose kernel is weight[t]
    expected = torch.stack([F.conv1d(x, weight[t], bias[t], padding="same")[:, :, t] for t in range(L)], dim=2)
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected, **tol(dtype))


def test_locally_connected1d_with_tied_weights_is_a_convolution():
    x, w = torch.randn(2, 3, 6), torch.randn(4, 3, 5)
    torch.testing.assert_close(C.locally_connected1d(x, w.expand(6, 4, 3, 5)), F.conv1d(x, w, padding="same"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("B, c_in, c_out, L, s, bias", [(1, 1, 1, 4, 3, False), (2, 3, 4, 9, 3, True),
                                                        (2, 3, 2, 5, 1, True), (1, 2, 2, 7, 7, True)])
def test_conv1d_matches_torch(dtype, padding, B, c_in, c_out, L, s, bias):
    x, w = torch.randn(B, c_in, L, dtype=dtype), torch.randn(c_out, c_in, s, dtype=dtype)
    b = torch.randn(c_out, dtype=dtype) if bias else None
    out = C.conv1d(x, w, b, padding)
    assert out.dtype == dtype
    torch.testing.assert_close(out, F.conv1d(x, w, b, padding=padding), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("B, c_in, c_out, H, W, s_h, s_w", [(1, 1, 1, 5, 5, 3, 3), (2, 3, 2, 6, 9, 3, 5),
                                                            (1, 2, 2, 6, 4, 5, 1), (2, 3, 4, 4, 5, 1, 1)])
def test_conv2d_matches_torch(dtype, padding, B, c_in, c_out, H, W, s_h, s_w):
    x, w = torch.randn(B, c_in, H, W, dtype=dtype), torch.randn(c_out, c_in, s_h, s_w, dtype=dtype)
    b = torch.randn(c_out, dtype=dtype)
    out = C.conv2d(x, w, b, padding)
    assert out.dtype == dtype
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=padding), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, s", [(5, 3), (8, 5), (4, 1), (5, 5), (6, 3), (12, 7)])
def test_true_convolution1d_matches_numpy(dtype, n, s):
    x, kernel = torch.randn(n, dtype=dtype), torch.randn(s, dtype=dtype)
    expected = torch.from_numpy(np.convolve(x.numpy(), kernel.numpy(), mode="same"))
    out = C.true_convolution1d(x, kernel)
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected.to(dtype), **tol(dtype))


def test_convolution_commutes_with_shift_but_locally_connected_does_not():
    x = torch.zeros(1, 1, 12)
    x[0, 0, 3:6] = torch.tensor([1.0, 2.0, 3.0])
    shifted = torch.roll(x, 4, dims=2)  # content stays clear of the borders, so roll is a pure shift
    w = torch.randn(2, 1, 3)
    torch.testing.assert_close(C.conv1d(shifted, w), torch.roll(C.conv1d(x, w), 4, dims=2))
    untied = torch.randn(12, 2, 1, 3)
    assert not torch.allclose(C.locally_connected1d(shifted, untied), torch.roll(C.locally_connected1d(x, untied), 4, 2))


@pytest.mark.parametrize("bad", ["full", "SAME", 1])
def test_bad_padding_is_rejected(bad):
    with pytest.raises(ValueError, match="padding"):
        C.conv1d(torch.randn(1, 1, 5), torch.randn(1, 1, 3), padding=bad)


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        C.conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 2))


def test_inputs_are_not_mutated():
    x, w, b = torch.randn(2, 3, 6), torch.randn(4, 3, 3), torch.randn(4)
    copies = [t.clone() for t in (x, w, b)]
    C.conv1d(x, w, b)
    C.locally_connected1d(x, torch.randn(6, 4, 3, 3), torch.randn(6, 4))
    assert all(torch.equal(a, b_) for a, b_ in zip((x, w, b), copies))
