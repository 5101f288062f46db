"""Small matplotlib figures rendered to ComfyUI IMAGE tensors for node previews."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import torch


def figure_to_image(fig, path=None) -> torch.Tensor:
    """A matplotlib figure -> IMAGE [1, H, W, 3] in 0..1, rendered once (also saved as a PNG at
    ``path`` when given); closes the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    if path is not None:
        Path(path).write_bytes(buf.getvalue())
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


def save_figure(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def search_plot(report: dict):
    """Left: every candidate's score per generation, the winner starred. Right: the
    aggregator's learned scales after each generation (ARW only)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [s for s in report["aggregator"].get("scales_over_time", []) if s.get("sigmas")]
    fig, axes = plt.subplots(1, 2 if scales else 1, figsize=(9 if scales else 5, 3.2), squeeze=False)
    ax = axes[0, 0]
    cands = [c for c in report["candidates"] if c["score"] is not None]  # pruned ones have none
    ax.scatter([c["generation"] for c in cands], [c["score"] for c in cands], s=18, alpha=0.7,
               label="candidate")
    pruned = [c for c in report["candidates"] if c.get("pruned_at") is not None]
    if pruned:  # at their last intermediate score (of an x0 read, not a final one)
        last = [c["intermediate"][max(c["intermediate"], key=int)] for c in pruned]
        ax.scatter([c["generation"] for c in pruned], last, marker="x", s=22, color="0.5",
                   label=f"pruned ({len(pruned)}; score of x0)")
    drafts = [c for c in report["candidates"] if c.get("committed") is False and c.get("draft_score") is not None]
    if drafts:  # drafts never run in full, at their draft's score
        ax.scatter([c["generation"] for c in drafts], [c["draft_score"] for c in drafts], marker="o",
                   s=18, facecolors="none", edgecolors="0.5", label=f"draft only ({len(drafts)})")
    best = next(c for c in cands if c["id"] == report["best"])
    ax.scatter([best["generation"]], [best["score"]], marker="*", s=220, color="C3",
               label=f"chosen (#{best['id']})")
    ax.set_xlabel("generation")
    ax.set_ylabel(f"score ({report['aggregator']['name']})")
    ax.set_xticks(sorted({c["generation"] for c in cands}))
    ax.set_title(f"{report['method']}: {len(cands)} finished"
                 + (f", {len(pruned)} pruned" if pruned else "")
                 + (f", {len(drafts)} drafts" if drafts else "") + f", {report['nfe']} NFE", fontsize=9)
    ax.legend(fontsize=7)
    if scales:
        ax = axes[0, 1]
        for name in scales[0]["sigmas"]:
            ax.plot([s["history_size"] for s in scales], [s["sigmas"][name] for s in scales],
                    marker="o", label=name)
        ax.set_xlabel("rewards seen")
        ax.set_ylabel("ARW sigma")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.set_title("learned scales", fontsize=9)
    fig.tight_layout()
    return fig
