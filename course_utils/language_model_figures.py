"""Figures and the sampling explorer for notebook 05 (language models), in the course's plotting style.

Drawing only: the maths lives in `course_utils.language_models`. The shared style and `plot_lines`
come from `course_utils.figures`; the headless fallback of the explorer from `course_utils.explorers`.
"""
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from .explorers import explore
from .figures import plot_lines

ROW_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
MODEL_COLORS = {"RNN": "#7f7f7f", "LSTM": "#1f77b4", "GRU": "#2ca02c", "transformer": "#d62728"}


def printable(ch):
    """A character as a readable label: space and newline made visible."""
    return {" ": "␣", "\n": "\\n", "\t": "\\t"}.get(ch, ch)


def show_batches(n, batches, title=None):
    """Where the batches of `sequential_batches(torch.arange(n), B, L)` come from in the stream.

    Top: the stream of n positions, each coloured by the row it lands in and shaded by its batch
    (grey: in no batch's inputs). Below: each batch's x and y, the numbers being stream positions.
    """
    B, L = batches[0][0].shape if batches else (1, 1)
    where = {}                                                        # position -> (row, batch) as an input
    for j, (x, _) in enumerate(batches):
        for b, row in enumerate(x.tolist()):
            for p in row:
                where[p] = (b, j)
    step = L + 2.5                                                    # horizontal room for one batch
    width = max(n, 1.2 + step * len(batches))
    fig, ax = plt.subplots(figsize=(0.42 * width + 0.4, 0.42 * (2 * B + 5.2) + 0.3))

    def cell(x, y, label, b, j, text_color="white"):
        color = "#dddddd" if b is None else ROW_COLORS[b % len(ROW_COLORS)]
        ax.add_patch(plt.Rectangle((x, y), 0.9, 0.9, color=color, alpha=1.0 if j is None or j % 2 == 0 else 0.5))
        ax.text(x + 0.45, y + 0.47, str(label), ha="center", va="center", fontsize=7.5,
                color="#555" if b is None else text_color)

    for p in range(n):
        cell(p, 0, p, *where.get(p, (None, None)))
    ax.text(0, -0.35, title or f"the stream of {n} tokens (colour: row, shade: batch, grey: in no batch's inputs)",
            fontsize=10, va="bottom")
    for j, (x, y) in enumerate(batches):
        left, top = 1.2 + j * step, 2.6
        ax.text(left, top - 0.35, f"batch {j}: x and y, each ({B}, {L})", fontsize=9, va="bottom")
        for tensor, offset, name in [(x, 0, "x"), (y, B + 0.6, "y")]:
            ax.text(left - 0.25, top + offset + B / 2, name, ha="right", va="center", fontsize=10)
            for b, row in enumerate(tensor.tolist()):
                for t, p in enumerate(row):
                    cell(left + t, top + offset + b, p, b, j)
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(2.6 + 2 * B + 0.7, -1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    plt.show()


def _plain_log_axis(axis):
    """Log-scale ticks written as plain numbers (5, 10, 20) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def plot_training(histories, final, baselines=None):
    """Validation perplexity against the step for each model (dict name -> history), and the final values.

    final: dict name -> the perplexity on the whole validation text; baselines: dict label -> the
    perplexity of a count model, drawn as dotted lines and grey bars.
    """
    baselines = baselines or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
    for name, history in histories.items():
        left.plot(history["val step"], history["val perplexity"], "o-", ms=3, label=name,
                  color=MODEL_COLORS.get(name))
    last = max(max(h["val step"]) for h in histories.values())
    for label, value in baselines.items():
        left.axhline(value, color="#999", lw=0.9, ls=":")
        left.text(last, value * 1.04, label, fontsize=8, color="#777", ha="right")
    left.set_yscale("log")
    _plain_log_axis(left.yaxis)
    left.set_xlabel("training step")
    left.set_ylabel("validation perplexity (log scale)")
    left.set_title("learning curves (part of the validation text)")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8, loc="lower left")
    names = list(baselines) + list(final)
    values = list(baselines.values()) + list(final.values())
    colors = ["#cccccc"] * len(baselines) + [MODEL_COLORS.get(n, "#1f77b4") for n in final]
    right.barh(range(len(names)), values, color=colors)
    for i, value in enumerate(values):
        right.text(value * 1.03, i, f"{value:.1f}", va="center", fontsize=8)
    right.set_yticks(range(len(names)), names)
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlim(1, max(values) * 2)
    _plain_log_axis(right.xaxis)
    right.set_xlabel("validation perplexity (log scale)")
    right.set_title("after training, whole validation text (grey: counts)")
    fig.tight_layout()
    plt.show()


def plot_position_losses(curves, unigram_level, show=32):
    """Mean cross-entropy at each position of the window (dict label -> `(L,)`), first `show` positions."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    styles = {label: "o-" if "carried" in label else "s--" for label in curves}
    plot_lines(list(range(show)), {label: np.asarray(v, dtype=float)[:show] for label, v in curves.items()},
               "position in the window (characters since the window started)", "mean cross-entropy (nats)",
               "a fresh state forgets the text before the window", styles=styles, ax=ax)
    ax.axhline(unigram_level, color="#999", lw=0.9, ls=":")
    ax.text(show - 1, unigram_level + 0.04, "character frequencies alone (unigram)", ha="right", fontsize=8,
            color="#777")
    fig.tight_layout()
    plt.show()


def _bars(ax, probs, chars, title, order, ylim=1.05):
    """Bars of probs[order], labelled with the characters; a note of how many characters can be drawn."""
    probs = np.asarray(probs, dtype=float)
    ax.bar(range(len(order)), probs[order], color="#1f77b4")
    ax.set_xticks(range(len(order)), [printable(chars[i]) for i in order])
    ax.set_ylim(0, ylim)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    kept = int((probs > 0).sum())
    ax.text(0.98, 0.95, f"{kept} of {len(probs)} characters possible\nlargest p = {probs.max():.2f}",
            transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#555")


def show_distributions(distributions, chars, prompt, top=15):
    """Next-character distributions side by side (dict title -> probabilities `(V,)`).

    Every panel shows the same characters, the `top` most likely ones of the first distribution given.
    """
    order = np.argsort(-np.asarray(next(iter(distributions.values())), dtype=float))[:top]
    highest = max(float(np.max(np.asarray(p, dtype=float))) for p in distributions.values())
    fig, axes = plt.subplots(1, len(distributions), figsize=(3.6 * len(distributions), 3.1), sharey=True)
    for ax, (title, probs) in zip(np.atleast_1d(axes), distributions.items()):
        _bars(ax, probs, chars, title, order, ylim=min(1.05, highest * 1.25))
    np.atleast_1d(axes)[0].set_ylabel("probability")
    fig.suptitle(f"the next character after {prompt!r}: its {top} most likely values", fontsize=11)
    fig.tight_layout()
    plt.show()


def sampling_explorer(distribution_fn, sample_text, chars, prompt, vocab_size):
    """Temperature and top-k against the next-character distribution and a generated text.

    distribution_fn(temperature, top_k) -> probabilities `(V,)` of the character after `prompt`;
    sample_text(temperature, top_k) -> a generated continuation (the same seed for every setting).
    """
    import ipywidgets as w

    def draw(temperature, top_k):
        k = None if top_k == vocab_size else top_k
        probs = np.asarray(distribution_fn(temperature, k), dtype=float)
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 1.25]})
        _bars(left, probs, chars, f"the next character: temperature {temperature:.3g}, top_k {k}",
              np.argsort(-probs)[:15])
        left.set_ylabel("probability")
        lines = [textwrap.fill(line, 76) for line in sample_text(temperature, k).splitlines()]
        right.text(0, 1, "\n".join("\n".join(lines).splitlines()[:16]), va="top", ha="left", fontsize=8.5,
                   family="monospace", transform=right.transAxes)
        right.set_title(f"a sample after {prompt!r} (the same seed every time)", fontsize=10)
        right.axis("off")
        fig.tight_layout()
        plt.show()

    explore(draw,
            temperature=w.FloatLogSlider(value=1.0, base=2, min=-3, max=2, step=0.25, description="temperature",
                                         style={"description_width": "initial"}),
            top_k=w.IntSlider(value=vocab_size, min=1, max=vocab_size, description="top_k"))
