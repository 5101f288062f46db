"""How much of each naive ToyAV outcome the seed alone decides (issue #19, item 3): a two-way
variance decomposition of the naive oracle metrics over 24 prompts x 12 seeds of the continuous
world, with ONE seed shared by every prompt (the setting where a lucky seed decided the old
claims). Prints, per metric, the share of the variance explained by the seed's main effect, by
the prompt's main effect and by neither (their interaction). Run from a folder where
comfyui_avits is a link to the repository: PYTHONPATH=. python docs/claims/world_variation.py"""
import torch
from comfyui_avits.generators.toyav import ToyAVGenerator
from comfyui_avits.generators.toyav.vocabulary import prompt_set

torch.set_num_threads(1)
prompts, seeds = prompt_set(24, seed=5, world="continuous"), list(range(12))
rows: dict[str, list[list[float]]] = {}
for prompt in prompts:
    g = ToyAVGenerator(prompt, world="continuous", steps=30)
    states, _ = g.denoise(g.initial_noise(seeds), 0, 30, seeds)
    for seed_row in (g.oracle(states, prompt),):
        for metric in seed_row[0]:
            rows.setdefault(metric, []).append([r[metric] for r in seed_row])
print(f"{'metric':20s} {'seed':>6s} {'prompt':>7s} {'neither':>8s}   (shares of the variance, "
      f"{len(prompts)} prompts x {len(seeds)} seeds)")
for metric, table in rows.items():
    y = torch.tensor(table, dtype=torch.float64)  # [prompt, seed]
    total = float(((y - y.mean()) ** 2).sum())
    by_seed = float(((y.mean(0) - y.mean()) ** 2).sum()) * y.shape[0]
    by_prompt = float(((y.mean(1) - y.mean()) ** 2).sum()) * y.shape[1]
    if total == 0:
        print(f"{metric:20s} constant")
        continue
    print(f"{metric:20s} {by_seed / total:6.2f} {by_prompt / total:7.2f} "
          f"{1 - (by_seed + by_prompt) / total:8.2f}")
