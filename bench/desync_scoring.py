"""DeSync on 8 candidates (6 s at 24 fps, 48 kHz stereo) with the tiny random Synchformer twin,
measured side by side in one run: the verifier called once on the batch (segments of every
candidate through the extractors together, every window through the classifier in one call)
against one call per candidate. Prints clips per second both ways, their ratio, and that the
logits agree. With the tiny twin the preprocessing (bicubic resize to 224, log-mels) is most of
the time; the real model's share grows with its 237M parameters."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from .common import REPO, comfyui_avits  # noqa: F401 (makes the package importable)
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.synchformer import DeSync, load_synchformer

sys.path.insert(0, str(REPO / "scripts"))
import tiny_synchformer  # noqa: E402


def main(repeats: int = 3, clips: int = 8) -> dict:
    torch.set_grad_enabled(False)
    model = load_synchformer(tiny_synchformer.write(Path(tempfile.mkdtemp())))
    g = torch.Generator().manual_seed(0)
    batch = AVBatch(torch.rand(clips, 144, 144, 256, 3, generator=g), 24.0,
                    0.1 * torch.randn(clips, 2, 288000, generator=g), 48000)
    verifier = DeSync(model)
    ways = {"batched": lambda: verifier.window_logits(batch),
            "one at a time": lambda: torch.cat([verifier.window_logits(batch.clip(i)) for i in range(clips)])}
    times: dict[str, list[float]] = {k: [] for k in ways}
    logits = {}
    for _ in range(repeats):
        for name, fn in ways.items():
            t = time.perf_counter()
            logits[name] = fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = (logits["batched"] - logits["one at a time"]).abs().max().item()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"DeSync, {clips} clips of 6 s at 24 fps (144 x 256, 48 kHz stereo), tiny random Synchformer "
          f"({params:.1f}M parameters), CPU with {torch.get_num_threads()} threads, median of {repeats}")
    for name in ways:
        print(f"  {name:14s} {med[name]:6.2f} s   {clips / med[name]:5.2f} clips/s")
    print(f"  ratio one-at-a-time / batched: {med['one at a time'] / med['batched']:.2f} x; "
          f"largest logit difference {diff:.1e}")
    return {"seconds": med, "ratio": med["one at a time"] / med["batched"], "max_diff": diff}


if __name__ == "__main__":
    main()
