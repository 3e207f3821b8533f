"""Figures and the explorer for notebook 03 (LSTM and GRU), in the course's plotting style.

Drawing only: the maths lives in `course_utils.lstm`. The shared style and `plot_lines` come from
`course_utils.figures`; the headless fallback of the explorer from `course_utils.explorers`.
"""
import matplotlib.pyplot as plt
import numpy as np

from .explorers import explore
from .figures import plot_lines

SENSITIVITY_CMAP = "Greys"   # as in Graves' figures: the darker, the more sensitive
GATE_CMAP = "Blues"
MODEL_STYLES = {"RNN": "o-", "LSTM": "s-", "GRU": "^-"}


def draw_lstm_cell():
    """The LSTM cell: the cell state runs along the top, changed only by a product (forget) and a sum (write)."""
    fig, ax = plt.subplots(figsize=(8.2, 3.9))
    arrow = dict(arrowstyle="->", color="#444", lw=1.2)
    cell_arrow = dict(arrowstyle="->", color="#d62728", lw=2.2)
    gate = dict(boxstyle="round,pad=0.3", fc="#e8f0fa", ec="#1f77b4")
    candidate = dict(boxstyle="round,pad=0.3", fc="#fdf0e6", ec="#ff7f0e")
    node = dict(boxstyle="circle,pad=0.15", fc="white", ec="#444")

    # the cell state, left to right along the top
    ax.annotate("", (2.05, 3.4), (0.1, 3.4), arrowprops=cell_arrow)
    ax.annotate("", (4.45, 3.4), (2.35, 3.4), arrowprops=cell_arrow)
    ax.annotate("", (9.9, 3.4), (4.75, 3.4), arrowprops=cell_arrow)
    ax.text(0.0, 3.4, "$c_{t-1}$", ha="right", va="center", fontsize=12, color="#d62728")
    ax.text(10.0, 3.4, "$c_t$", ha="left", va="center", fontsize=12, color="#d62728")
    ax.text(2.2, 3.4, "×", ha="center", va="center", bbox=node, fontsize=11)
    ax.text(4.6, 3.4, "+", ha="center", va="center", bbox=node, fontsize=11)
    ax.text(3.4, 3.62, "cell state: $c_t = f_t\\,c_{t-1} + i_t\\,g_t$", ha="center", fontsize=9, color="#d62728")

    # the inputs of every gate: h_{t-1} and x_t
    ax.plot([0.1, 6.6], [0.45, 0.45], color="#444", lw=1.2)
    ax.text(0.0, 0.45, "$h_{t-1}$", ha="right", va="center", fontsize=12)
    ax.annotate("", (1.0, 0.45), (1.0, -0.45), arrowprops=arrow)
    ax.text(1.0, -0.6, "$x_t$", ha="center", va="top", fontsize=12)
    boxes = [(2.2, "σ", "f", "forget: reset", gate), (3.6, "σ", "i", "input: write", gate),
             (4.9, "tanh", "g", "candidate", candidate), (6.6, "σ", "o", "output: read", gate)]
    for x, act, name, role, style in boxes:
        ax.annotate("", (x, 1.35), (x, 0.45), arrowprops=arrow)
        ax.text(x, 1.6, f"{act}  ${name}$", ha="center", va="center", bbox=style, fontsize=10)
        ax.text(x + 0.08, 0.95, role, ha="left", va="center", fontsize=8, color="#555")

    ax.annotate("", (2.2, 3.22), (2.2, 1.85), arrowprops=arrow)                 # f multiplies c_{t-1}
    ax.text(4.6, 2.55, "×", ha="center", va="center", bbox=node, fontsize=11)    # i * g
    ax.annotate("", (4.43, 2.55), (3.6, 1.85), arrowprops=arrow)
    ax.annotate("", (4.72, 2.4), (4.9, 1.85), arrowprops=arrow)
    ax.annotate("", (4.6, 3.22), (4.6, 2.73), arrowprops=arrow)

    # reading the cell: h_t = o_t tanh(c_t)
    ax.annotate("", (8.0, 2.72), (8.0, 3.4), arrowprops=arrow)
    ax.text(8.0, 2.5, "tanh", ha="center", va="center", bbox=candidate, fontsize=10)
    ax.text(8.0, 1.6, "×", ha="center", va="center", bbox=node, fontsize=11)
    ax.annotate("", (8.0, 1.78), (8.0, 2.28), arrowprops=arrow)
    ax.annotate("", (7.82, 1.6), (6.95, 1.6), arrowprops=arrow)
    ax.annotate("", (9.9, 1.6), (8.18, 1.6), arrowprops=arrow)
    ax.text(10.0, 1.6, "$h_t$", ha="left", va="center", fontsize=12)
    ax.text(8.2, 1.25, "$h_t = o_t \\tanh(c_t)$", ha="left", fontsize=9)

    ax.set_xlim(-0.7, 10.7)
    ax.set_ylim(-1.0, 4.0)
    ax.axis("off")
    ax.set_title("one LSTM step: three gates between 0 and 1 decide what is reset, written and read", fontsize=10)
    fig.tight_layout()
    plt.show()


def _sensitivity_panel(ax, values, title, scale=None):
    """Draw `(units, T)` sensitivities divided by `scale` (default: their maximum), so that black is 1."""
    values = np.asarray(values, dtype=float)
    values = values / (scale or values.max() or 1.0)
    image = ax.imshow(values, cmap=SENSITIVITY_CMAP, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest",
                      extent=(0.5, values.shape[1] + 0.5, values.shape[0] - 0.5, -0.5))
    ax.set_yticks(range(values.shape[0]))
    ax.set_ylabel("unit")
    ax.set_title(title, fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    return image


def _gate_strip(ax, gates):
    names = list(gates)
    values = np.stack([np.asarray(gates[n], dtype=float) for n in names])      # (gates, T)
    ax.imshow(values, cmap=GATE_CMAP, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest",
              extent=(0.5, values.shape[1] + 0.5, len(names) - 0.5, -0.5))
    for (r, c), value in np.ndenumerate(values):
        ax.text(c + 1, r, "O" if value > 0.5 else "–", ha="center", va="center", fontsize=7,
                color="white" if value > 0.5 else "#555")
    ax.set_yticks(range(len(names)), [f"{n} gate" for n in names], fontsize=8)
    ax.set_title("LSTM gates (O: open, –: closed)", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)


def show_sensitivity_maps(maps, gates, title):
    """Heatmaps of ||d unit_t / d x_1|| (dict panel title -> `(units, T)`), each scaled to its own maximum,
    above a strip of the LSTM's gate values over time (dict gate name -> `(T,)`)."""
    n = len(maps)
    fig, axes = plt.subplots(n + 1, 1, figsize=(8.5, 1.7 * n + 1.5), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [3] * n + [1.5]})
    for ax, (panel, values) in zip(axes[:-1], maps.items()):
        image = _sensitivity_panel(ax, values, panel)
    _gate_strip(axes[-1], gates)
    T = len(next(iter(gates.values())))
    axes[-1].set_xticks(range(1, T + 1))
    axes[-1].set_xlabel("time step t")
    colorbar = fig.colorbar(image, ax=list(axes[:-1]), fraction=0.025, pad=0.02)
    colorbar.set_label("sensitivity to $x_1$ (÷ largest in panel)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    plt.show()


def forget_bias_explorer(sensitivity, memory_demo, unit_sensitivities, units=6):
    """Move the forget-gate bias of the hand-set LSTM and watch how long its cells remember x_1.

    sensitivity: an `input_sensitivity` function; memory_demo(forget_bias) and unit_sensitivities(...) from
    `course_utils.lstm`.
    """
    import ipywidgets as w

    def draw(forget_bias):
        demo = memory_demo(forget_bias)
        xs = demo["xs"]
        cell_step, cell_state = demo["cell"]
        cells = unit_sensitivities(sensitivity, cell_step, xs, cell_state, units)               # (units, T)
        T = xs.shape[0]
        f = float(demo["gates"]["forget"][0])
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.3), gridspec_kw={"width_ratios": [1.2, 1]})
        image = _sensitivity_panel(left, cells, f"LSTM cells, forget-gate bias {forget_bias:+.1f} (f = {f:.3f})",
                                   scale=float(cells[:, 0].max()))
        left.set_xticks(range(1, T + 1, 2))
        left.set_xlabel("time step t")
        fig.colorbar(image, ax=left, fraction=0.04, pad=0.02).set_label("÷ largest at t = 1", fontsize=8)
        steps = list(range(1, T + 1))
        series = {label: sensitivity(demo[key][0], xs, demo[key][1])
                  for label, key in [("LSTM cell c_t", "cell"), ("LSTM output h_t", "lstm"), ("tanh RNN h_t", "rnn")]}
        plot_lines(steps, {k: np.maximum(np.asarray(v, dtype=float), 1e-12) for k, v in series.items()},
                   "time step t", "||d state_t / d x_1||", "how long x_1 is remembered", logy=True, ax=right,
                   ylim=(1e-8, 10), styles={"LSTM output h_t": ":", "tanh RNN h_t": "--"})
        right.set_xticks(range(1, T + 1, 2))
        fig.tight_layout()
        plt.show()

    explore(draw, forget_bias=w.FloatSlider(value=2.0, min=-2.0, max=8.0, step=0.5, description="forget bias",
                                            style={"description_width": "initial"}))


def plot_peephole_timer(with_peepholes, without, threshold=1.0):
    """The cell, output gate and output of the counting unit over time, with and without peepholes."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.1), sharey=True)
    for ax, run, title in zip(axes, (with_peepholes, without), ("with peepholes: the output gate reads c_t",
                                                               "without peepholes: the output gate stays shut")):
        steps = list(range(1, len(run["c"]) + 1))
        ax.axhline(threshold, color="#999", lw=0.8, ls=":")
        ax.text(steps[0], threshold + 0.06, "threshold", ha="left", fontsize=8, color="#777")
        plot_lines(steps, {"cell c_t": run["c"], "output gate o_t": run["o"], "output h_t": run["h"]},
                   "time step t", "value", title, ax=ax, styles={"output gate o_t": "--", "output h_t": "s-"})
        ax.set_xticks(steps[::2])
    fig.tight_layout()
    plt.show()


def plot_delay_results(delays, accuracies, chance):
    """Held-out accuracy against the delay, one curve per model (dict name -> list), chance level dotted."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    plot_lines(delays, accuracies, "delay T (steps between the symbol and the question)", "held-out accuracy",
               "recall the first symbol after T steps of noise", ax=ax, ylim=(0, 1.05),
               styles={k: MODEL_STYLES.get(k, "o-") for k in accuracies})
    ax.axhline(chance, color="#999", lw=0.8, ls=":")
    ax.text(delays[0], chance - 0.07, f"chance ({chance:.0%})", ha="left", fontsize=8, color="#777")
    ax.set_xscale("log", base=2)
    ax.set_xticks(delays, [str(d) for d in delays])
    fig.tight_layout()
    plt.show()
