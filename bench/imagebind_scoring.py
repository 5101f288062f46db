"""Scoring 8 candidates (4 s, 24 fps, 16 kHz) with JavisScore + AVHScore + AV-IB on one random
mid-size ImageBind, measured side by side in one run:

- ours, as the search does it: one batched pass, every frame and audio clip embedded once and
  shared by the three scores, tensors in memory;
- the benchmark reference's way: one clip at a time, each metric from its own inputs (its own
  embeddings; conservatively still in memory, and a window's audio embedded once, not as three
  identical clips).
Prints both times, their ratio and that the scores agree.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from .common import REPO, comfyui_avits  # noqa: F401 (makes the package importable)
from comfyui_avits.core import verifier as verifier_api
from comfyui_avits.verifiers import AVBatch, AVHScore, ImageBindScore, JavisScore
from comfyui_avits.verifiers.imagebind import ImageBindEmbedder

sys.path.insert(0, str(REPO / "scripts"))
import tiny_imagebind  # noqa: E402


def verifiers(model):
    return [JavisScore(model), AVHScore(model), ImageBindScore(model, ("av",))]


def ours(model, batch) -> dict:
    fresh = ImageBindEmbedder(model)  # a cold cache, as for every new generation
    return verifier_api.score(verifiers(fresh), batch, [""] * len(batch))


def reference_way(model, batch) -> dict:
    out: dict[str, list] = {}
    for i in range(len(batch)):
        for j in range(len(verifiers(model))):
            one = verifiers(ImageBindEmbedder(model))[j]  # its own embeddings, nothing shared
            for k, t in verifier_api.score([one], batch.clip(i), [""]).items():
                out.setdefault(k, []).append(t)
    return {k: torch.cat(v) for k, v in out.items()}


def main(repeats: int = 2) -> dict:
    torch.set_grad_enabled(False)
    model = tiny_imagebind.build("mid")
    g = torch.Generator().manual_seed(0)
    batch = AVBatch(torch.rand(8, 96, 144, 256, 3, generator=g), 24.0,
                    0.1 * torch.randn(8, 1, 64000, generator=g), 16000)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    scores = {}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("reference", reference_way)):
            t = time.perf_counter()
            scores[name] = fn(model, batch)
            times[name].append(time.perf_counter() - t)
    a, b = scores["ours"], scores["reference"]
    agree = max((a[k] - b[k]).abs().max().item() for k in a)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"JavisScore + AVHScore + AV-IB, 8 clips of 4 s at 24 fps (144 x 256), random "
          f"mid-size ImageBind ({params:.0f}M parameters), CPU, median of {repeats}")
    print(f"  ours (one batched pass, shared embeddings): {med['ours']:7.2f} s")
    print(f"  reference way (clip by clip, per metric):   {med['reference']:7.2f} s")
    print(f"  ratio reference / ours: {med['reference'] / med['ours']:.2f} x; "
          f"largest score difference {agree:.1e}")
    return {"seconds": med, "ratio": med["reference"] / med["ours"], "max_diff": agree}


if __name__ == "__main__":
    main()
