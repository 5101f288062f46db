"""MMDisCo's joint sampler (public ``MMDisCo.sample`` with ``joint: True``): per step, classifier-
free guidance per modality, the discriminator's logit gradient with respect to both noisy latents
(for the conditional and the unconditional text, combined by the same CFG rule), scaled by
-sqrt(1 - alpha_bar_t) of each modality's own schedule and by the joint scales, added to each
modality's noise estimate; then one ancestral DDPM step per modality with its own schedule.

The two base models have different noise schedules, so this is a sampler of its own rather than
ComfyUI's. Every random draw of a candidate comes from generators derived from its seed and the
step (``step_generator``), so a candidate is the same whatever batch it runs in.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from collections.abc import Iterator, Sequence
from typing import Protocol

import torch
from torch import nn

from .discriminator import MultimodalDiscriminator

TRAIN_STEPS = 1000


class EpsModel(Protocol):
    """One base model (video: VideoCrafter2, audio: Auffusion) as the sampler sees it. Two
    optional attributes change the DDPM step where a model has them: ``steps_offset`` (default
    1, the timestep of the last step) and ``clip_sample`` (default False, clamp x0_hat to [-1, 1]
    as a diffusers DDPM config with ``clip_sample: true`` does)."""

    alphas_cumprod: torch.Tensor
    """(1000,) float64: the schedule MMDisCo samples this modality with."""
    latent_shape: tuple[int, ...]

    def encode_text(self, prompts: list[str]) -> torch.Tensor: ...

    def null_text(self, batch: int) -> torch.Tensor: ...

    def pooled_text(self, context: torch.Tensor) -> torch.Tensor: ...

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                      generators: list[torch.Generator] | None = None) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class JointGuidance:
    """Guidance scales (the public ``auffusion_videocrafter2_vggsound`` + ``inference/default``
    values): CFG per modality, and the weight of the coupling gradient per modality."""

    cfg_video: float = 8.0
    cfg_audio: float = 8.0
    joint_video: float = 8.0
    joint_audio: float = 1.0


def leading_timesteps(steps: int, offset: int = 1, train_steps: int = TRAIN_STEPS) -> list[int]:
    """DDPM "leading" spacing: k * (T // steps) + offset, descending (981, 961, ..., 1 for 50)."""
    ratio = train_steps // steps
    return [k * ratio + offset for k in reversed(range(steps))]


def predict_x0(x: torch.Tensor, eps: torch.Tensor, t: int, alphas_cumprod: torch.Tensor,
               clip_sample: bool = False) -> torch.Tensor:
    """The clean-sample prediction (x - sqrt(1 - ab) eps) / sqrt(ab), clamped where the
    scheduler clips it."""
    ab_t = float(alphas_cumprod[t])
    x0 = (x - (1 - ab_t) ** 0.5 * eps) / ab_t ** 0.5
    return x0.clamp(-1, 1) if clip_sample else x0


def ddpm_step(x: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, alphas_cumprod: torch.Tensor,
              noise: torch.Tensor, clip_sample: bool = False) -> torch.Tensor:
    """One ancestral DDPM step from timestep t to t_prev (< 0: the clean end, alpha_bar = 1):
    the posterior mean of q(x_prev | x_t, x0_hat) with x0_hat from eps, plus the "fixed_small"
    posterior standard deviation (variance clamped at 1e-20, as the public scheduler) times noise."""
    ab_t = float(alphas_cumprod[t])
    ab_prev = float(alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
    alpha_t = ab_t / ab_prev
    beta_t = 1.0 - alpha_t
    x0 = predict_x0(x, eps, t, alphas_cumprod, clip_sample)
    mean = (ab_prev ** 0.5 * beta_t / (1 - ab_t)) * x0 + (alpha_t ** 0.5 * (1 - ab_prev) / (1 - ab_t)) * x
    std = max((1 - ab_prev) / (1 - ab_t) * beta_t, 1e-20) ** 0.5
    return mean + std * noise


# ---- per-candidate randomness -----------------------------------------------------------------

VIDEO_COND, VIDEO_UNCOND, AUDIO_COND, AUDIO_UNCOND, VIDEO_NOISE, AUDIO_NOISE = range(6)
"""The streams of one candidate at one step: the base models' own draws for the conditional and
unconditional rows, and the ancestral noise of each modality."""


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A CPU generator for candidate ``seed`` at sampling ``step``, one per stream: a function of
    (seed, step, stream) alone, so neither the batch nor where a run was split changes it."""
    digest = hashlib.blake2b(f"mmdisco/{int(seed)}/{int(step)}/{int(stream)}".encode(),
                             digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


@dataclass
class StepNoise:
    """Everything random in one joint step of a batch: ancestral noise per modality and, per row
    of the batched [cond; uncond] base-model calls, the generator of the model's own draws."""

    video: torch.Tensor
    audio: torch.Tensor
    video_generators: list[torch.Generator]
    audio_generators: list[torch.Generator]

    @classmethod
    def draw(cls, seeds: Sequence[int], step: int, video_shape: Sequence[int],
             audio_shape: Sequence[int]) -> StepNoise:
        def noise(stream: int, shape: Sequence[int]) -> torch.Tensor:
            return torch.stack([torch.randn(tuple(shape), generator=step_generator(s, step, stream))
                                for s in seeds])

        def rows(cond: int, uncond: int) -> list[torch.Generator]:
            return ([step_generator(s, step, cond) for s in seeds]
                    + [step_generator(s, step, uncond) for s in seeds])

        return cls(noise(VIDEO_NOISE, video_shape), noise(AUDIO_NOISE, audio_shape),
                   rows(VIDEO_COND, VIDEO_UNCOND), rows(AUDIO_COND, AUDIO_UNCOND))


# ---- text ---------------------------------------------------------------------------------------

@dataclass
class Text:
    """One modality's text for one prompt: contexts (1, 77, D) and the token-averaged (1, D)
    embeddings the discriminator reads, conditional and unconditional."""

    cond: torch.Tensor
    uncond: torch.Tensor
    pooled_cond: torch.Tensor
    pooled_uncond: torch.Tensor

    @classmethod
    def encode(cls, model: EpsModel, prompt: str) -> Text:
        cond, uncond = model.encode_text([prompt]), model.null_text(1)
        return cls(cond, uncond, model.pooled_text(cond), model.pooled_text(uncond))


# ---- the discriminator's gradient ---------------------------------------------------------------

@contextlib.contextmanager
def _fp32_autograd() -> Iterator[None]:
    """Autograd on, inference mode off and TF32 off (the public code disables it globally)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _autograd_ready(module: nn.Module) -> None:
    """Replaces parameters and buffers made under inference mode (or not fp32) by fp32 copies
    made outside it: autograd cannot save inference tensors for backward. Call inside
    _fp32_autograd; a no-op once done."""
    for mod in module.modules():
        for table in (mod._parameters, mod._buffers):
            for name, value in table.items():
                if value is None:
                    continue
                recast = value.is_floating_point() and value.dtype != torch.float32
                if not (value.is_inference() or recast):
                    continue
                fixed = value.detach().clone()
                fixed = fixed.float() if recast else fixed
                table[name] = nn.Parameter(fixed, requires_grad=False) if table is mod._parameters else fixed


def coupling_gradients(disc: MultimodalDiscriminator, xv: torch.Tensor, xa: torch.Tensor,
                       t: torch.Tensor, video_text: torch.Tensor, audio_text: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """d logit / d x_v and d logit / d x_a per row, in fp32 with autograd enabled even under the
    caller's inference mode (inputs are cloned out of it). Rows do not interact in D, so the
    gradient of the summed logits is each row's own."""
    with _fp32_autograd():
        _autograd_ready(disc)
        v = xv.detach().clone().float().requires_grad_(True)
        a = xa.detach().clone().float().requires_grad_(True)
        logit = disc.logit(v, a, t.clone(), video_text.detach().clone().float(),
                           audio_text.detach().clone().float())
        gv, ga = torch.autograd.grad(logit.sum(), (v, a))
    return gv.detach(), ga.detach()


# ---- the sampler --------------------------------------------------------------------------------

def _rows(cond: torch.Tensor, uncond: torch.Tensor, b: int) -> torch.Tensor:
    """[cond; uncond] for a batch of b from one prompt's (1, ...) tensors."""
    return torch.cat([cond.expand(b, *cond.shape[1:]), uncond.expand(b, *uncond.shape[1:])])


def _cfg(pair: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + w (cond - uncond) on a [cond; uncond] batch."""
    cond, uncond = pair.chunk(2)
    return uncond + scale * (cond - uncond)


class JointSampler:
    """The joint DDPM sampler over one video and one audio EpsModel coupled by a discriminator
    (None: the two run independently, MMDisCo's ``joint: False``)."""

    def __init__(self, video: EpsModel, audio: EpsModel, discriminator: MultimodalDiscriminator | None,
                 steps: int = 50, guidance: JointGuidance = JointGuidance()) -> None:
        if not 1 <= steps <= TRAIN_STEPS:
            raise ValueError(f"steps must lie in 1..{TRAIN_STEPS}, got {steps}")
        self.video, self.audio, self.discriminator = video, audio, discriminator
        self.steps, self.guidance = steps, guidance
        self.timesteps_video = leading_timesteps(steps, getattr(video, "steps_offset", 1))
        self.timesteps_audio = leading_timesteps(steps, getattr(audio, "steps_offset", 1))
        self.stride = TRAIN_STEPS // steps

    def step(self, xv: torch.Tensor, xa: torch.Tensor, index: int, text_v: Text, text_a: Text,
             noise: StepNoise, predictions: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step ``index`` (0 = from pure noise) on a batch of float32 latents; with
        ``predictions``, the step's x0 predictions (video, audio) are appended to it."""
        g = self.guidance
        b = xv.shape[0]
        t_v, t_a = self.timesteps_video[index], self.timesteps_audio[index]
        with torch.no_grad():
            eps_v = _cfg(self._pair(self.video, xv, t_v, text_v, noise.video_generators), g.cfg_video)
            eps_a = _cfg(self._pair(self.audio, xa, t_a, text_a, noise.audio_generators), g.cfg_audio)
        if self.discriminator is not None and (g.joint_video or g.joint_audio):
            # both at the audio timestep, both score factors at it, as the public code does
            t = torch.full((2 * b,), t_a, dtype=torch.int64, device=xv.device)
            gv, ga = coupling_gradients(
                self.discriminator, torch.cat([xv, xv]), torch.cat([xa, xa]), t,
                _rows(text_v.pooled_cond, text_v.pooled_uncond, b).to(xv.device),
                _rows(text_a.pooled_cond, text_a.pooled_uncond, b).to(xa.device))
            sv = -float(1 - self.video.alphas_cumprod[t_a]) ** 0.5
            sa = -float(1 - self.audio.alphas_cumprod[t_a]) ** 0.5
            eps_v = eps_v + g.joint_video * _cfg(sv * gv, g.cfg_video).to(eps_v.dtype)
            eps_a = eps_a + g.joint_audio * _cfg(sa * ga, g.cfg_audio).to(eps_a.dtype)
        with torch.no_grad():
            if predictions is not None:
                predictions.append((
                    predict_x0(xv, eps_v, t_v, self.video.alphas_cumprod, getattr(self.video, "clip_sample", False)),
                    predict_x0(xa, eps_a, t_a, self.audio.alphas_cumprod, getattr(self.audio, "clip_sample", False))))
            xv = ddpm_step(xv, eps_v, t_v, t_v - self.stride, self.video.alphas_cumprod,
                           noise.video.to(xv.device, xv.dtype), getattr(self.video, "clip_sample", False))
            xa = ddpm_step(xa, eps_a, t_a, t_a - self.stride, self.audio.alphas_cumprod,
                           noise.audio.to(xa.device, xa.dtype), getattr(self.audio, "clip_sample", False))
        return xv, xa

    @staticmethod
    def _pair(model: EpsModel, x: torch.Tensor, t: int, text: Text,
              generators: list[torch.Generator]) -> torch.Tensor:
        """One base-model call on [cond; uncond]: the batch twice, one timestep."""
        b = x.shape[0]
        context = _rows(text.cond, text.uncond, b)
        tt = torch.full((2 * b,), t, dtype=torch.int64, device=x.device)
        return model.predict_noise(torch.cat([x, x]), tt, context.to(x.device), generators).float()
