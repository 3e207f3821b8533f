"""Figures and explorers for notebook 04 (self-attention), in the course's plotting style.

Drawing only: the maths lives in `course_utils.attention`. The shared style and `plot_lines` come
from `course_utils.figures`; the headless fallback of the explorers from `course_utils.explorers`.
"""
import matplotlib.pyplot as plt
import numpy as np

from .explorers import explore
from .figures import plot_lines

WEIGHTS_CMAP = "Blues"
MASK_COLORS = ("#f2f2f2", "#1f77b4")  # blocked, may attend


def _heatmap(ax, matrix, row_labels, col_labels, title, vmax=1.0, annotate=True, cmap=WEIGHTS_CMAP):
    matrix = np.asarray(matrix, dtype=float)
    ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax)
    if annotate:
        for (r, c), value in np.ndenumerate(matrix):
            if value >= 0.005:
                ax.text(c, r, f"{value:.2f}"[1:] if value < 1 else "1", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * vmax else "black")
    ax.set_xticks(range(matrix.shape[1]), col_labels, rotation=90 if max(map(len, col_labels)) > 2 else 0)
    ax.set_yticks(range(matrix.shape[0]), row_labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)


def show_attention(weights, query_labels=None, key_labels=None, titles=None, annotate=True, size=3.4):
    """Attention weights as heatmaps, one per matrix: `(Lq, Lk)` or a stack `(n, Lq, Lk)`; rows are queries."""
    weights = np.asarray(weights, dtype=float)
    if weights.ndim == 2:
        weights = weights[None]
    n, Lq, Lk = weights.shape
    query_labels = [str(i) for i in range(Lq)] if query_labels is None else [str(t) for t in query_labels]
    key_labels = [str(i) for i in range(Lk)] if key_labels is None else [str(t) for t in key_labels]
    if titles is None:
        titles = [f"head {h}" for h in range(n)] if n > 1 else ["attention weights"]
    width = size * max(1.0, Lk / 8)
    fig, axes = plt.subplots(1, n, figsize=(width * n, size * max(1.0, Lq / 8)), squeeze=False)
    for ax, matrix, title in zip(axes[0], weights, titles):
        _heatmap(ax, matrix, query_labels, key_labels, title, annotate=annotate)
    fig.tight_layout()
    plt.show()


def show_masks(masks):
    """Boolean masks side by side (dict title -> `(Lq, Lk)` bool); dark = may attend, light = blocked."""
    from matplotlib.colors import ListedColormap
    fig, axes = plt.subplots(1, len(masks), figsize=(3.0 * len(masks), 3.0), squeeze=False)
    for ax, (title, mask) in zip(axes[0], masks.items()):
        mask = np.asarray(mask, dtype=bool)
        ax.imshow(mask, cmap=ListedColormap(MASK_COLORS), vmin=0, vmax=1)
        for (r, c), value in np.ndenumerate(mask):
            ax.text(c, r, "T" if value else "F", ha="center", va="center", fontsize=7,
                    color="white" if value else "#999")
        ax.set_xticks(range(mask.shape[1]))
        ax.set_yticks(range(mask.shape[0]))
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.set_title(title)
    fig.tight_layout()
    plt.show()


def plot_scaling(dims, spread, saturation, gradient):
    """Three panels against d: the spread of q.k, the largest softmax weight, the size of the softmax's gradient.

    `spread` is a list; `saturation` and `gradient` are dicts label -> list (one curve per scaling).
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    plot_lines(dims, {"measured std of q.k": spread, "sqrt(d)": np.sqrt(np.asarray(dims, dtype=float))},
               "d", "standard deviation", "dot products spread like sqrt(d)", ax=axes[0],
               styles={"sqrt(d)": "--"})
    plot_lines(dims, saturation, "d", "mean largest weight (16 keys)", "unscaled, the softmax saturates",
               ax=axes[1], ylim=(0, 1.05))
    axes[1].axhline(1 / 16, color="#999", lw=0.8, ls=":")
    axes[1].text(dims[0], 1 / 16 - 0.045, "uniform (1/16)", ha="left", fontsize=8, color="#777")
    plot_lines(dims, gradient, "d", "mean ||d softmax / d scores||", "... and its gradient vanishes",
               ax=axes[2], logy=True)
    for ax in axes:
        ax.set_xscale("log", base=2)
    fig.tight_layout()
    plt.show()


def show_positional_encoding(pe, columns=(0, 1, 6, 7, 14, 15)):
    """The encoding `(L, d)` as a heatmap, a few of its columns as curves, and the similarities PE PE^T."""
    pe = np.asarray(pe, dtype=float)
    L, d = pe.shape
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.1, 1.3, 1]})
    image = axes[0].imshow(pe, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    axes[0].set_xlabel("feature (column)")
    axes[0].set_ylabel("position p")
    axes[0].set_title(f"PE for L = {L}, d = {d}")
    fig.colorbar(image, ax=axes[0], fraction=0.05)
    for c in columns:
        kind = "sin" if c % 2 == 0 else "cos"
        axes[1].plot(pe[:, c], "-" if kind == "sin" else "--", lw=1.2, label=f"column {c} ({kind})")
    axes[1].set_xlabel("position p")
    axes[1].set_title("one frequency per pair of columns")
    axes[1].legend(fontsize=7, ncol=3, loc="lower left")
    axes[1].set_ylim(-1.6, 1.15)
    axes[1].grid(alpha=0.3)
    similarity = pe @ pe.T
    image = axes[2].imshow(similarity, cmap="viridis")
    axes[2].set_xlabel("position q")
    axes[2].set_ylabel("position p")
    axes[2].set_title("PE[p] . PE[q]: a function of p - q")
    fig.colorbar(image, ax=axes[2], fraction=0.05)
    fig.tight_layout()
    plt.show()


def sentence_attention_explorer(demo, weights_fn):
    """Explore the hand-made heads of `attention.sentence_heads()`: pick a head, a query word, a temperature.

    weights_fn(demo, temperature) -> weights `(H, L, L)` for the demo sentence.
    """
    import ipywidgets as w

    words, names = demo["words"], demo["head_names"]

    def draw(head, query, temperature):
        weights = np.asarray(weights_fn(demo, temperature)[head], dtype=float)            # (L, L)
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.1, 1]})
        _heatmap(left, weights, words, words, f"head {head}: {names[head]}  (temperature {temperature:g})",
                 annotate=False)
        left.add_patch(plt.Rectangle((-0.5, query - 0.5), len(words), 1, fill=False, ec="#d62728", lw=2))
        row = weights[query]
        colors = ["#d62728" if i == query else "#1f77b4" for i in range(len(words))]
        right.bar(range(len(words)), row, color=colors)
        right.set_xticks(range(len(words)), words, rotation=45)
        right.set_ylim(0, 1.05)
        right.set_ylabel("attention weight")
        right.set_title(f"where '{words[query]}' (position {query}) looks")
        for i, value in enumerate(row):
            if value >= 0.01:
                right.text(i, value + 0.02, f"{value:.2f}", ha="center", fontsize=8)
        right.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        plt.show()

    explore(draw,
            head=w.Dropdown(options=[(f"{h}: {name}", h) for h, name in enumerate(names)], value=1,
                            description="head"),
            query=w.IntSlider(value=words.index("it"), min=0, max=len(words) - 1, description="query"),
            temperature=w.FloatLogSlider(value=1.0, base=2, min=-3, max=3, step=0.25, description="temperature",
                                         style={"description_width": "initial"}))


def show_reversal_attention(maps, tokens, title):
    """The attention weights of a trained model on one example: maps is a list (one per block) of `(H, L, L)`."""
    labels = [str(t) for t in tokens]
    heads = [(b, h) for b, m in enumerate(maps) for h in range(len(m))]
    fig, axes = plt.subplots(1, len(heads), figsize=(4.3 * len(heads), 4.2), squeeze=False)
    for ax, (b, h) in zip(axes[0], heads):
        _heatmap(ax, maps[b][h], labels, labels, f"block {b}, head {h}", annotate=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    plt.show()


def plot_training(history):
    """Training loss (log scale) and held-out accuracy of `attention.train_reversal`."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    plot_lines(history["step"], {"training loss": history["loss"]}, "step", "cross-entropy", "loss", ax=left,
               logy=True, styles={"training loss": "-"})
    plot_lines(history["report step"], {k: history[k] for k in ("token accuracy", "sequence accuracy")}, "step",
               "fraction right", "held-out accuracy", ax=right, ylim=(0, 1.02))
    fig.tight_layout()
    plt.show()
