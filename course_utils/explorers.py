"""Interactive explorers (ipywidgets). Headless (no JupyterLab frontend, e.g. nbval, nbconvert,
the autograder) they draw one static figure at their default values instead."""
import os


def headless():
    """True when no Jupyter frontend will show widgets (Jupyter Server sets JPY_SESSION_NAME in its kernels)."""
    return "JPY_SESSION_NAME" not in os.environ


def explore(draw, **controls):
    """Call `draw(**defaults)` once when headless; otherwise show `ipywidgets.interact(draw, **controls)`.

    Each control is an ipywidgets widget; its `value` is the default.
    """
    if headless():
        draw(**{name: widget.value for name, widget in controls.items()})
        return
    import ipywidgets
    ipywidgets.interact(draw, **controls)


def parameter_count_explorer(count_parameters):
    """Kernel size and image size against the three parameter counts, on a log scale."""
    import ipywidgets as w
    from .figures import plot_counts

    def draw(image_size, k, channels):
        sizes = list(range(8, image_size + 1, max(1, image_size // 12)))
        counts = {name: [] for name in ("fully_connected", "locally_connected", "convolutional")}
        for n in sizes:
            for name, value in count_parameters(n, n, channels, channels, k, bias=True).items():
                counts[name].append(value)
        plot_counts(sizes, counts, "image height = width (pixels)",
                    f"{channels} -> {channels} channels, kernel {2 * k + 1}x{2 * k + 1}")

    explore(draw, image_size=w.IntSlider(value=256, min=16, max=1024, step=16, description="image size"),
            k=w.IntSlider(value=1, min=0, max=5, description="k"),
            channels=w.IntSlider(value=3, min=1, max=64, description="channels"))


def kernel_explorer(image, conv2d):
    """Slide a 3x3 kernel's entries and watch the feature map of one digit change."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    import torch

    def draw(centre, left_right, up_down):
        kernel = torch.tensor([[0.0, up_down, 0.0], [left_right, centre, -left_right], [0.0, -up_down, 0.0]])
        out = conv2d(image[None], kernel[None, None])[0, 0]
        fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
        for ax, picture, title in zip(axes, [image[0], kernel, out], ["digit", "kernel", "feature map"]):
            limit = float(picture.abs().max()) or 1.0
            ax.imshow(picture, cmap="RdBu_r" if title != "digit" else "gray_r",
                      vmin=-limit if title != "digit" else None, vmax=limit if title != "digit" else None)
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        plt.show()

    explore(draw, centre=w.FloatSlider(value=0.0, min=-2, max=2, step=0.25, description="centre"),
            left_right=w.FloatSlider(value=1.0, min=-2, max=2, step=0.25, description="left - right"),
            up_down=w.FloatSlider(value=0.0, min=-2, max=2, step=0.25, description="up - down"))


def spectral_radius_explorer(jacobian_norms, matrix_with_spectral_radius, lags=range(0, 41)):
    """The norm of d h_T / d h_{T-l} = W_hh^l against the lag l, for a chosen spectral radius."""
    import ipywidgets as w
    from .figures import plot_lines

    def draw(radius):
        W = matrix_with_spectral_radius(8, radius)
        plot_lines(list(lags), {f"spectral radius {radius:.2f}": jacobian_norms(W, lags)}, "lag l = T - t",
                   "||d h_T / d h_t||", "how far back a gradient reaches", logy=True,
                   ylim=(1e-6, 1e6))  # fixed, so that moving the slider compares like with like

    explore(draw, radius=w.FloatSlider(value=0.9, min=0.5, max=1.5, step=0.05, description="radius"))
