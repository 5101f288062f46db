"""The brightness finding of docs/claims.md, measured: how well ToyTextMatch reads brightness,
loudness and size back against the latent's true value, what an average sample's brightness
error is for a "bright" prompt, and what seed 21's is. Run from a folder where comfyui_avits
is a link to the repository: PYTHONPATH=. python docs/claims/brightness_probe.py"""
import statistics

import torch
from comfyui_avits.generators.toyav import ToyAVGenerator, ToyTextMatch
from comfyui_avits.generators.toyav import latent
torch.set_num_threads(1)
for prompt in ["a bright red ball bouncing, bell sound", "a dark blue cube bouncing, loud drum sound",
               "a small bright green pyramid bouncing, whistle sound"]:
    g = ToyAVGenerator(prompt, world="continuous", steps=30)
    seeds = list(range(48))
    states, _ = g.denoise(g.initial_noise(seeds), 0, 30, seeds)
    av = g.decode(states)
    read = ToyTextMatch().read(av)
    x = torch.stack(states)
    true = latent.values(x, g.layout)
    for a in ("brightness", "loudness", "size"):
        if a in read:
            r, t = read[a].float(), true[a].float()
            print(f"{prompt[:40]:40s} {a:10s} read-true mean {float((r-t).mean()):+.3f} sd {float((r-t).std()):.3f} corr {float(torch.corrcoef(torch.stack([r,t]))[0,1]):.3f}")
    print("  true brightness mean", float(true["brightness"].mean()), "sd", float(true["brightness"].std()))
g = ToyAVGenerator("a bright red ball bouncing, bell sound", world="continuous", steps=30)
seeds = list(range(200))
states, _ = g.denoise(g.initial_noise(seeds), 0, 30, seeds)
o = g.oracle(states, "a bright red ball bouncing, bell sound")
print("average sample brightness_error over 200 seeds:", statistics.mean(r["brightness_error"] for r in o))
o21 = g.oracle(g.denoise(g.initial_noise([21]), 0, 30, [21])[0], "a bright red ball bouncing, bell sound")
print("seed 21:", o21[0]["brightness_error"])
