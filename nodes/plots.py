"""Small matplotlib figures rendered to ComfyUI IMAGE tensors for node previews."""

from __future__ import annotations

import io as _io

import numpy as np
import torch


def figure_to_image(fig) -> torch.Tensor:
    """A matplotlib figure -> IMAGE [1, H, W, 3] in 0..1 (and closes the figure)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    img = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(img)[None]


def scales_plot(trace: list[dict], title: str):
    """sigma_k against the number of rewards seen (ARW's learned scales over time)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    names = sorted({k for t in trace for k in (t.get("sigmas") or {})})
    for name in names:
        pts = [(t["history_size"], t["sigmas"][name]) for t in trace if t.get("sigmas")]
        ax.plot(*zip(*pts), marker=".", label=name)
    ax.set_xlabel("rewards seen")
    ax.set_ylabel("sigma (learned scale)")
    ax.set_yscale("log")
    ax.set_title(title)
    if names:
        ax.legend()
    fig.tight_layout()
    return fig
