"""Real images without a download: scikit-learn's bundled 8x8 handwritten digits, and three small
networks (fully-connected, locally-connected, convolutional) to compare on them."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_digits(test_fraction=0.25, seed=0):
    """(x_train, y_train, x_test, y_test): images `(N, 1, 8, 8)` float32 in [0, 1], labels int64 `(N,)`."""
    from sklearn.datasets import load_digits as sklearn_digits
    data = sklearn_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.int64)                     # (1797,)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def shift_images(x, dy, dx):
    """Translate images `(N, C, H, W)` by whole pixels (down by dy, right by dx), filling with zeros."""
    H, W = x.shape[-2:]
    out = torch.zeros_like(x)
    rows_to, rows_from = slice(max(dy, 0), H + min(dy, 0)), slice(max(-dy, 0), H - max(dy, 0))
    cols_to, cols_from = slice(max(dx, 0), W + min(dx, 0)), slice(max(-dx, 0), W - max(dx, 0))
    out[..., rows_to, cols_to] = x[..., rows_from, cols_from]
    return out


class LocallyConnected2d(nn.Module):
    """A 2-D layer with a separate (c_out, c, s, s) kernel at every output pixel; same padding."""

    def __init__(self, h, w, c, c_out, s):
        super().__init__()
        self.s = s
        self.weight = nn.Parameter(torch.randn(h * w, c_out, c * s * s) / (c * s * s) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(h * w, c_out))

    def forward(self, x):                                            # x: (B, c, h, w)
        B, _, h, w = x.shape
        patches = F.unfold(x, self.s, padding=self.s // 2)           # (B, c*s*s, h*w)
        out = torch.einsum("bkp,pok->bop", patches, self.weight)     # (B, c_out, h*w)
        return (out + self.bias.T).reshape(B, -1, h, w)              # (B, c_out, h, w)


def make_models(channels=(16, 32), s=3, seed=0):
    """Three digit classifiers that differ only in the kind of their two hidden layers.

    (1, 8, 8) -> layer -> ReLU -> layer -> ReLU -> (c2, 8, 8) -> max over positions -> (c2,) -> 10 classes.
    The layers are fully-connected, locally-connected or convolutional; all keep the 8x8 layout, so
    the same head (a max over positions, then a linear map) follows.
    """
    torch.manual_seed(seed)
    c1, c2 = channels

    def dense(c_in, c_out):  # every output pixel sees every input pixel
        return nn.Sequential(nn.Flatten(), nn.Linear(c_in * 64, c_out * 64), nn.Unflatten(1, (c_out, 8, 8)))

    def head():
        return nn.Sequential(nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c2, 10))

    return {
        "fully-connected": nn.Sequential(dense(1, c1), nn.ReLU(), dense(c1, c2), head()),
        "locally-connected": nn.Sequential(LocallyConnected2d(8, 8, 1, c1, s), nn.ReLU(),
                                           LocallyConnected2d(8, 8, c1, c2, s), head()),
        "convolutional": nn.Sequential(nn.Conv2d(1, c1, s, padding="same"), nn.ReLU(),
                                       nn.Conv2d(c1, c2, s, padding="same"), head()),
    }


def hidden_layer_count(model):
    """Parameters of the two hidden layers (everything but the shared head)."""
    return count(model) - count(model[-1])


def count(model):
    return sum(p.numel() for p in model.parameters())


def train(model, x, y, epochs=30, batch_size=128, lr=3e-3, seed=0, augment=None):
    """Adam on cross-entropy; prints one line at the end. `augment(x_batch)` may transform each batch."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            xb = x[batch] if augment is None else augment(x[batch])
            loss = F.cross_entropy(model(xb), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def accuracy(model, x, y):
    return (model(x).argmax(dim=1) == y).float().mean().item()
