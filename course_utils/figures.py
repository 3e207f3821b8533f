"""Figures for the notebooks, in one style. No maths here: each function draws what it is given."""
import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"figure.dpi": 90, "axes.spines.top": False, "axes.spines.right": False,
                     "axes.titlesize": 11, "axes.labelsize": 10, "font.size": 10})
DIVERGING = "RdBu_r"
COLORS = {"fully-connected": "#d62728", "locally-connected": "#ff7f0e", "convolutional": "#1f77b4"}


def show_images(images, titles=None, ncols=8, size=1.2, cmap="gray_r"):
    """A grid of single-channel images `(N, 1, H, W)` or `(N, H, W)`."""
    images = np.asarray(images).reshape(len(images), *np.asarray(images).shape[-2:])
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(image, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    plt.show()


def show_patch(image, patch, i, j, k):
    """An image with the patch around (i, j) outlined, and the patch itself (zeros outside shown)."""
    from matplotlib.patches import Rectangle
    image, patch = np.asarray(image), np.asarray(patch)
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.imshow(image, cmap="gray_r")
    left.add_patch(Rectangle((j - k - 0.5, i - k - 0.5), 2 * k + 1, 2 * k + 1, fill=False, color="#d62728", lw=2))
    left.plot(j, i, "o", color="#d62728")
    left.set_title(f"image, pixel ({i}, {j}), k = {k}")
    right.imshow(patch, cmap="gray_r", vmin=float(image.min()), vmax=float(image.max()))
    right.set_title(f"patch P_k({i}, {j}): {patch.shape[0]}x{patch.shape[1]}")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    plt.show()


def show_matrices(matrices, titles, labels=True):
    """Matrices side by side as heatmaps, zeros white, with the entries written in."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.3 * len(matrices), 3))
    for ax, M, title in zip(np.atleast_1d(axes), matrices, titles):
        M = np.asarray(M, dtype=float)
        limit = np.abs(M).max() or 1.0
        ax.imshow(np.where(M == 0, np.nan, M), cmap=DIVERGING, vmin=-limit, vmax=limit)
        if labels:
            for (r, c), value in np.ndenumerate(M):
                ax.text(c, r, "0" if value == 0 else f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="#999" if value == 0 else "black")
        ax.set_title(title)
        ax.set_xticks(range(M.shape[1]))
        ax.set_yticks(range(M.shape[0]))
        ax.set_xlabel("input position")
        ax.set_ylabel("output position")
    fig.tight_layout()
    plt.show()


def plot_counts(sizes, counts, xlabel, title):
    """Parameter counts of the three layer kinds (dict name -> list) against `sizes`, log scale."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in counts.items():
        ax.plot(sizes, values, "o-", label=name.replace("_", "-"), color=COLORS.get(name.replace("_", "-")))
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("parameters (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center right")
    fig.tight_layout()
    plt.show()


def plot_signals(x, outputs, title):
    """A 1-D signal and several layer outputs over position (dict label -> sequence)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.asarray(x), "k.-", label="input", alpha=0.5)
    for label, y in outputs.items():  # "shift(...)" curves dashed, so a curve they cover stays visible
        dashed = label.startswith("shift")
        ax.plot(np.asarray(y), "o--" if dashed else "o-", label=label, ms=7 if dashed else 3,
                mfc="none" if dashed else None, lw=1.2)
    ax.set_xlabel("position")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.show()


def plot_experiment(results):
    """Bar charts of first-layer parameters and accuracies (centred and shifted test digits)."""
    names = list(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.3))
    left.bar(names, [results[n]["hidden layers"] for n in names], color=[COLORS[n] for n in names])
    left.set_yscale("log")
    left.set_title("parameters of the hidden layers (log scale)")
    width = 0.38
    positions = np.arange(len(names))
    right.bar(positions - width / 2, [results[n]["test"] for n in names], width, label="test digits",
              color=[COLORS[n] for n in names])
    right.bar(positions + width / 2, [results[n]["shifted"] for n in names], width, label="shifted by one pixel",
              color=[COLORS[n] for n in names], alpha=0.45, hatch="//")
    right.set_xticks(positions, names)
    right.set_ylim(0, 1)
    right.set_title("accuracy")
    right.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    plt.show()


def plot_lines(x, series, xlabel, ylabel, title, logy=False, styles=None, ax=None, ylim=None):
    """Several curves over the same x (dict label -> values); optional log y axis and y limits."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for label, values in series.items():
        ax.plot(x, np.asarray(values, dtype=float), (styles or {}).get(label, "o-"), label=label, ms=3)
    if logy:
        ax.set_yscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if own:
        fig.tight_layout()
        plt.show()


def draw_unrolled_rnn(T=4):
    """The recurrence h_t = f(h_{t-1}, x_t), o_t = g(h_t) drawn unrolled over T steps."""
    fig, ax = plt.subplots(figsize=(1.9 * T + 1.5, 2.8))
    box = dict(boxstyle="round,pad=0.35", fc="#e8f0fa", ec="#1f77b4")
    arrow = dict(arrowstyle="->", color="#444", lw=1.2)
    ax.text(0, 1, "$h_0$", ha="center", va="center", bbox=dict(box, fc="#f2f2f2", ec="#999"))
    for t in range(1, T + 1):
        x = 1.8 * t
        ax.text(x, 1, f"$h_{t}$", ha="center", va="center", bbox=box, fontsize=12)
        ax.text(x, 0, f"$x_{t}$", ha="center", va="center", bbox=dict(box, fc="#fdf0e6", ec="#ff7f0e"))
        ax.text(x, 2, f"$o_{t}$", ha="center", va="center", bbox=dict(box, fc="#eaf6ea", ec="#2ca02c"))
        ax.annotate("", (x, 0.78), (x, 0.22), arrowprops=arrow)
        ax.annotate("", (x, 1.78), (x, 1.22), arrowprops=arrow)
        ax.annotate("", (x - 0.3, 1), (x - 1.5, 1), arrowprops=arrow)
        ax.text(x - 0.9, 1.12, "$W_{hh}$", ha="center", fontsize=9, color="#444")
        ax.text(x + 0.12, 0.48, "$W_{hx}$", fontsize=9, color="#444")
        ax.text(x + 0.12, 1.48, "$W_{oh}$", fontsize=9, color="#444")
    ax.set_xlim(-0.5, 1.8 * T + 0.6)
    ax.set_ylim(-0.4, 2.4)
    ax.axis("off")
    ax.set_title("one set of weights, reused at every step", fontsize=10)
    fig.tight_layout()
    plt.show()
