"""ToyAV's denoiser: the exact posterior mean of the data distribution under rectified flow, with a
caption model and classifier-free guidance. Exact, so every failure of naive sampling comes from
the sampler's own randomness (the seed), which is what inference-time search can fix.

The data are a finite set of items (color x shape x sound x phase) and, in the continuous world,
independent continuous coordinates, each a 1-D Gaussian mixture; a mixture keeps E[x0 | x_t]
closed-form, and its map from noise to sample is smooth."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import latent


def caption_log_likelihood(labels: torch.Tensor, wanted: dict[int, int],
                           caption_noise: float) -> torch.Tensor:
    """log p(prompt | item) for items with attribute indices [M, 3]: every attribute the prompt
    names (column -> index in ``wanted``) costs log(eps) where the item does not have it."""
    log_eps = torch.log(torch.tensor(caption_noise, dtype=torch.float64))
    out = torch.zeros(labels.shape[0], dtype=torch.float64)
    for column, index in wanted.items():
        out += torch.where(labels[:, column] == index, 0.0, log_eps)
    return out


class GuidedDenoiser:
    """D_uncond + g (D_cond - D_uncond), where D(x) = E[x0 | x_t = x] for x_t = (1 - t) x0 + t noise
    and x0 drawn from ``items`` [M, DIM] (uniform prior; the conditional posterior also weighs
    each item by its caption ``log_likelihood`` [M]). Each part (video, audio) weighs the items
    by its own distance plus ``coupling`` (one number, or one per item [M]) times the other
    part's: 1 gives the exact joint posterior, 0 lets the parts pick different items (phases out
    of sync)."""

    def __init__(self, items: torch.Tensor, log_likelihood: torch.Tensor, guidance: float,
                 coupling: float | torch.Tensor) -> None:
        self.items, self.guidance = items, guidance
        self.coupling = torch.as_tensor(coupling, dtype=items.dtype)
        self.log_prior = torch.stack([torch.zeros_like(log_likelihood), log_likelihood])  # [cond, M]
        video_only, audio_only = items.clone(), items.clone()
        video_only[:, latent.AUDIO] = 0
        audio_only[:, latent.VIDEO] = 0
        self.part_items = torch.stack([video_only, audio_only])  # [part, M, DIM]

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Denoised x0 estimate [N, DIM] for x [N, DIM] at noise level t > 0."""
        sq = (x[:, None, :] - (1 - t) * self.items).square() / (2 * t * t)  # [N, M, DIM]
        d_video, d_audio = sq[..., latent.VIDEO].sum(-1), sq[..., latent.AUDIO].sum(-1)
        distance = torch.stack([d_video + self.coupling * d_audio, d_audio + self.coupling * d_video])
        weights = torch.softmax(self.log_prior[:, None, None] - distance, dim=-1)  # [cond, part, N, M]
        mean = (weights[..., None] * self.part_items[:, None]).sum((1, 3))  # [cond, N, DIM]
        return mean[0] + self.guidance * (mean[1] - mean[0])


@dataclass(frozen=True)
class Mixture:
    """The prior of every continuous coordinate, in units of its value's logit (the latent holds
    latent.LOGIT_SCALE times that): equal Gaussians of std ``width`` at ``means`` (one broad one
    by default: v spans about 0.05..0.95; several that overlap give a flatter density). A word in
    the prompt is a noisy caption of the value: likelihood N(logit v; logit target,
    caption_width^2); wide enough that guided samples still miss the target by about 0.1."""

    means: tuple[float, ...] = (0.0,)
    width: float = 1.5
    caption_width: float = 2.0


Shifts = tuple[float, ...]
"""Equally likely offsets of a coordinate's prior (logit units): the mixture's means move by each."""


class MixtureDenoiser:
    """The guided posterior mean of independent continuous coordinates, per coordinate in closed
    form: the prior times a Gaussian caption likelihood is again a Gaussian mixture (for a
    coordinate the prompt names; the unnamed ones keep the prior), and for a mixture
    E[x0 | x_t] = sum_k r_k(x_t) E_k[x0 | x_t] with Gaussian r_k and linear E_k. A coordinate's
    prior is the mixture moved by each of its ``shifts`` (unconditional, conditional), equally
    weighted: the unconditional one over every category that biases it (vocabulary.TENDENCIES),
    the conditional one that of the category the prompt names, else the same."""

    def __init__(self, mixture: Mixture, targets: list[float | None], guidance: float,
                 shifts: list[tuple[Shifts, Shifts]] | None = None) -> None:
        scale = latent.LOGIT_SCALE
        shifts = shifts or [((0.0,), (0.0,))] * len(targets)
        repeat = math.lcm(*(len(s) for pair in shifts for s in pair))  # equal weights, one size

        def prior(offsets: Shifts) -> torch.Tensor:
            """The components' means [K * repeat]: every mixture mean moved by every offset."""
            moved = [scale * (m + o) for o in offsets * (repeat // len(offsets)) for m in mixture.means]
            return torch.tensor(moved, dtype=torch.float64)

        s2, c2 = (scale * mixture.width) ** 2, (scale * mixture.caption_width) ** 2
        means, variances, log_w = [], [], []
        for target, (_, named) in zip(targets, shifts):
            mu = prior(named)
            if target is None:  # no level word: the posterior is the (caption's) prior
                means.append(mu)
                variances.append(torch.full_like(mu, s2))
                log_w.append(torch.zeros_like(mu))
            else:
                z = scale * math.log(target / (1 - target))
                means.append((mu * c2 + z * s2) / (s2 + c2))
                variances.append(torch.full_like(mu, s2 * c2 / (s2 + c2)))
                log_w.append(-(mu - z).square() / (2 * (s2 + c2)))
        unconditional = torch.stack([prior(free) for free, _ in shifts])
        # [cond, J, L]: row 0 the unconditional prior, row 1 the posterior given the prompt
        self.means = torch.stack([unconditional, torch.stack(means)])
        self.variances = torch.stack([torch.full_like(unconditional, s2), torch.stack(variances)])
        self.log_w = torch.stack([torch.zeros_like(unconditional), torch.stack(log_w)])
        self.guidance = guidance

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """Denoised estimate [N, J] of the continuous coordinates x [N, J] at noise level t > 0."""
        var_t = (1 - t) ** 2 * self.variances + t * t  # [cond, J, L]: variance of x_t given k
        diff = x[None, :, :, None] - (1 - t) * self.means[:, None]  # [cond, N, J, L]
        log_r = (self.log_w - 0.5 * var_t.log())[:, None] - diff.square() / (2 * var_t[:, None])
        e_k = self.means[:, None] + ((1 - t) * self.variances / var_t)[:, None] * diff
        mean = (torch.softmax(log_r, dim=-1) * e_k).sum(-1)  # [cond, N, J]
        return mean[0] + self.guidance * (mean[1] - mean[0])


def euler_step(x: torch.Tensor, denoised: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Euler step of dx/dt = (x - D(x)) / t from t to t_next (lands on D at t_next = 0)."""
    return denoised + (t_next / t) * (x - denoised)
