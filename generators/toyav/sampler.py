"""ToyAV's denoiser: the exact posterior mean of a finite dataset under rectified flow, with a
caption model and classifier-free guidance. Exact, so every failure of naive sampling comes from
the sampler's own randomness (the seed), which is what inference-time search can fix."""

from __future__ import annotations

import torch

from . import latent


def caption_log_likelihood(labels: torch.Tensor, wanted: dict[int, int], caption_noise: float) -> torch.Tensor:
    """log p(prompt | item) for items with attribute indices [M, 3]: every attribute the prompt
    names (column -> index in ``wanted``) costs log(eps) where the item does not have it."""
    log_eps = torch.log(torch.tensor(caption_noise, dtype=torch.float64))
    out = torch.zeros(labels.shape[0], dtype=torch.float64)
    for column, index in wanted.items():
        out += torch.where(labels[:, column] == index, 0.0, log_eps)
    return out


def posterior_mean(x: torch.Tensor, t: float, items: torch.Tensor, log_weight: torch.Tensor,
                   coupling: float) -> torch.Tensor:
    """E[x0 | x_t = x] for x [N, DIM] with x_t = (1 - t) x0 + t noise and x0 drawn from ``items``
    [M, DIM] with prior log weights [M]. Each part weighs the items by its own distance plus
    ``coupling`` times the other part's (1: the exact joint posterior; 0: independent parts)."""
    sq = (x[:, None, :] - (1 - t) * items[None]).square() / (2 * t * t)  # [N, M, DIM]
    d_video, d_audio = sq[..., latent.VIDEO].sum(-1), sq[..., latent.AUDIO].sum(-1)
    w_video = torch.softmax(log_weight - d_video - coupling * d_audio, dim=-1)  # [N, M]
    w_audio = torch.softmax(log_weight - d_audio - coupling * d_video, dim=-1)
    video = (w_video[..., None] * items[None, :, latent.VIDEO]).sum(1)
    audio = (w_audio[..., None] * items[None, :, latent.AUDIO]).sum(1)
    return torch.cat([video, audio], dim=-1)


def guided_mean(x: torch.Tensor, t: float, items: torch.Tensor, log_likelihood: torch.Tensor,
                guidance: float, coupling: float) -> torch.Tensor:
    """Classifier-free guidance: D_uncond + g (D_cond - D_uncond), uniform prior."""
    uncond = posterior_mean(x, t, items, torch.zeros_like(log_likelihood), coupling)
    cond = posterior_mean(x, t, items, log_likelihood, coupling)
    return uncond + guidance * (cond - uncond)


def euler_step(x: torch.Tensor, denoised: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Euler step of dx/dt = (x - D(x)) / t from t to t_next (lands on D at t_next = 0)."""
    return denoised + (t_next / t) * (x - denoised)
