"""ToyAV's denoiser: the exact posterior mean of a finite dataset under rectified flow, with a
caption model and classifier-free guidance. Exact, so every failure of naive sampling comes from
the sampler's own randomness (the seed), which is what inference-time search can fix."""

from __future__ import annotations

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
    by its own distance plus ``coupling`` times the other part's: 1 gives the exact joint
    posterior, 0 lets the parts pick different items (phases out of sync)."""

    def __init__(self, items: torch.Tensor, log_likelihood: torch.Tensor, guidance: float,
                 coupling: float) -> None:
        self.items, self.guidance, self.coupling = items, guidance, coupling
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


def euler_step(x: torch.Tensor, denoised: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Euler step of dx/dt = (x - D(x)) / t from t to t_next (lands on D at t_next = 0)."""
    return denoised + (t_next / t) * (x - denoised)
