"""MMDisCoGenerator: VideoCrafter2 + Auffusion coupled by MMDisCo's discriminator behind the
search's Generator protocol (core/generator.py), so Best-of-N and EvoSearch run on it unchanged."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ...core.batch import AVBatch
from ...core.checks import finite
from ...core.generator import MUTATIONS, StepCallback
from .discriminator import MultimodalDiscriminator
from .sampler import EpsModel, JointGuidance, JointSampler, StepNoise, Text

State = tuple[torch.Tensor, torch.Tensor]
"""One candidate: (video latent (C, T, H, W), audio latent (C, mel, time)), float32."""


class MMDisCoGenerator:
    """Joint text-to-audio-video by MMDisCo's sampler (sampler.JointSampler), 50 ancestral DDPM
    steps by default. Step k is the state before the k-th denoising step (step 0: pure noise,
    step ``steps``: the finished latents).

    Every draw of a candidate comes from its seed: the initial noise from ``seed`` itself, the
    noise of step k (ancestral noise and the base models' own draws) from (seed, k)
    (sampler.step_generator). So a candidate's result depends neither on the batch it ran in nor
    on where a run was split. The sampler is ancestral, hence ``deterministic = False``: the
    same state rolled out with another seed gives another sample (EvoSearch gives its elites new
    rollouts).

    ``nfe`` counts joint evaluations: one per candidate per step, which is one CFG pair of each
    base model (four UNet rows) and one discriminator gradient (cond and uncond text)."""

    deterministic = False

    def __init__(self, video: EpsModel, audio: EpsModel, discriminator: MultimodalDiscriminator | None,
                 prompt: str, steps: int = 50, cfg_video: float = 8.0, cfg_audio: float = 8.0,
                 joint_scale_video: float = 8.0, joint_scale_audio: float = 1.0,
                 seconds: float = 2.0, device: str | torch.device | None = None) -> None:
        self.steps = finite("steps", steps, 1, 1000, integer=True)
        guidance = JointGuidance(finite("cfg_video", cfg_video, 0, 100),
                                 finite("cfg_audio", cfg_audio, 0, 100),
                                 finite("joint_scale_video", joint_scale_video, 0, 1000),
                                 finite("joint_scale_audio", joint_scale_audio, 0, 1000))
        self.seconds = finite("seconds", seconds, 0, 60, lo_open=True)
        self.sampler = JointSampler(video, audio, discriminator, self.steps, guidance)
        self.video, self.audio, self.discriminator = video, audio, discriminator
        self._prompt = prompt
        if device is None:
            params = list(discriminator.parameters()) if discriminator is not None else []
            device = params[0].device if params else "cpu"
        self.device = torch.device(device)
        self.video_shape, self.audio_shape = self._shapes()
        self.nfe = 0
        self._text: tuple[Text, Text] | None = None

    def _shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The base models' latent shapes, which fix the clip length (the loaders take it:
        16 frames at 8 fps and 2 s of Auffusion audio for MMDisCo); ``seconds`` must agree."""
        video_shape, audio_shape = tuple(self.video.latent_shape), tuple(self.audio.latent_shape)
        frames = video_shape[1]
        if round(self.seconds * self.video.fps) != frames:
            raise ValueError(f"the video model was loaded for {frames} frames at {self.video.fps} fps "
                             f"({frames / self.video.fps:g} s), not {self.seconds:g} s; load the "
                             "models for the clip length you want")
        if self.discriminator is not None:
            tokens, most = 2 + frames + audio_shape[-1], self.discriminator.sizes.max_tokens
            if tokens > most:
                raise ValueError(f"{frames} video frames and {audio_shape[-1]} audio latent steps "
                                 f"need {tokens} discriminator tokens, over its {most}; ask for "
                                 "a shorter clip")
        return video_shape, audio_shape

    @property
    def prompt(self) -> str:
        """Fixed at construction: its text embeddings are computed once and kept."""
        return self._prompt

    def _texts(self) -> tuple[Text, Text]:
        if self._text is None:
            with torch.no_grad():
                self._text = (Text.encode(self.video, self._prompt), Text.encode(self.audio, self._prompt))
        return self._text

    # ---- the schedule ----------------------------------------------------------------------

    def _noise_std(self, model: EpsModel, timesteps: list[int], step: int) -> float:
        """sqrt(1 - alpha_bar) of ``model``'s schedule at ``step`` (0 at the end)."""
        if not 0 <= step <= self.steps:
            raise ValueError(f"step {step} is outside 0..{self.steps}")
        return 0.0 if step == self.steps else float(1 - model.alphas_cumprod[timesteps[step]]) ** 0.5

    def sigmas(self) -> list[float]:
        """For the report: the video schedule's noise-to-signal ratio sqrt((1 - ab) / ab) at
        every step boundary (the audio schedule differs; both are DDPM)."""
        out = []
        for step in range(self.steps + 1):
            s = self._noise_std(self.video, self.sampler.timesteps_video, step)
            out.append(s / (1 - s * s) ** 0.5)
        return out

    # ---- the protocol --------------------------------------------------------------------------

    def initial_noise(self, seeds: Sequence[int]) -> list[State]:
        """Standard Gaussian latents from each seed: audio first, drawn (C, time, mel) and
        transposed to Auffusion's (C, mel, time), then video, the order the public code draws."""
        out = []
        c, mel, steps = self.audio_shape
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            a = torch.randn(c, steps, mel, generator=g).transpose(1, 2).contiguous()
            out.append((torch.randn(self.video_shape, generator=g), a))
        return out

    def mutate(self, state: State, step: int, beta: float, seed: int, mode: str) -> State:
        """EvoSearch's child of ``state`` at ``step``, in the DDPM convention x_t = sqrt(ab) x_0 +
        sqrt(1 - ab) eps, each latent at its own schedule's noise level s = sqrt(1 - ab_t):

        - step 0 (pure noise): sqrt(1 - beta^2) x + beta eps, which stays standard Gaussian;
        - later, ``variance_preserving``: sqrt(1 - beta^2) x + beta s eps. The noise part keeps
          exactly the variance s^2 of its step ((1 - beta^2) s^2 + beta^2 s^2), so the sampler,
          which assumes that level, continues correctly; only the signal shrinks by
          sqrt(1 - beta^2) (0.98 at beta = 0.2);
        - later, ``reference``: x + s eps, the reference's rule (add noise of the step's noise
          level, t/T in rectified flow) carried over to DDPM. It does not keep the variance: the
          noise grows to 2 s^2, which the ancestral steps then partly absorb.

        The noise is drawn from ``seed`` alone (audio, then video)."""
        if mode not in MUTATIONS:
            raise ValueError(f"mutation must be one of {MUTATIONS}, got '{mode}'")
        g = torch.Generator().manual_seed(int(seed))
        xv, xa = state
        ea = torch.randn(xa.shape, generator=g).to(xa.device, xa.dtype)
        ev = torch.randn(xv.shape, generator=g).to(xv.device, xv.dtype)
        keep = math.sqrt(1 - beta * beta)
        if step == 0:
            return keep * xv + beta * ev, keep * xa + beta * ea
        sv = self._noise_std(self.video, self.sampler.timesteps_video, step)
        sa = self._noise_std(self.audio, self.sampler.timesteps_audio, step)
        if mode == "variance_preserving":
            return keep * xv + beta * sv * ev, keep * xa + beta * sa * ea
        return xv + sv * ev, xa + sa * ea

    def denoise_predicting(self, states: list[State], start: int, end: int, seeds: Sequence[int] = (),
                           on_step: StepCallback | None = None) -> tuple[list[State], list[State]]:
        """As denoise, with the x0 predictions (x - sqrt(1 - ab) eps) / sqrt(ab) of the last step,
        from the guided and coupled eps that step used."""
        if not 0 <= start < end <= self.steps:
            raise ValueError(f"need 0 <= start < end <= {self.steps}, got start={start}, end={end}")
        last: list = []
        finals, _ = self.denoise(states, start, end, seeds, on_step=on_step, _x0=last)
        xv, xa = last[-1]
        return finals, list(zip(xv.unbind(0), xa.unbind(0)))

    def denoise(self, states: list[State], start: int, end: int, seeds: Sequence[int] = (),
                record: Sequence[int] = (), on_step: StepCallback | None = None,
                _x0: list | None = None) -> tuple[list[State], dict[int, list[State]]]:
        """Joint steps ``start``..``end`` - 1 on the whole batch; candidate i's noise comes from
        ``seeds[i]`` and the step alone."""
        if not 0 <= start <= end <= self.steps:
            raise ValueError(f"need 0 <= start <= end <= {self.steps}, got start={start}, end={end}")
        outside = [r for r in record if not start <= r <= end]
        if outside:
            raise ValueError(f"record steps {outside} are outside {start}..{end}")
        if len(seeds) != len(states):
            raise ValueError(f"the ancestral sampler needs one seed per state: {len(states)} states, "
                             f"{len(seeds)} seeds")
        recorded: dict[int, list[State]] = {}
        if not states:
            return [], {r: [] for r in record}
        xv = torch.stack([v for v, _ in states]).to(self.device, torch.float32)
        xa = torch.stack([a for _, a in states]).to(self.device, torch.float32)
        text_v, text_a = self._texts()
        for step in range(start, end + 1):
            if step in record:
                recorded[step] = list(zip(xv.unbind(0), xa.unbind(0)))
            if step == end:
                break
            noise = StepNoise.draw(seeds, step, self.video_shape, self.audio_shape)
            xv, xa = self.sampler.step(xv, xa, step, text_v, text_a, noise, _x0)
            self.nfe += len(states)
            if on_step is not None:
                on_step(len(states))
        return list(zip(xv.unbind(0), xa.unbind(0))), recorded

    def decode(self, states: list[State]) -> AVBatch:
        """Frames (N, T, H, W, 3) in [0, 1] at the video model's fps and mono audio (N, 1, S) at
        its sample rate, trimmed to ``seconds``."""
        if not states:
            raise ValueError("decode needs at least one state")
        with torch.no_grad():
            video = self.video.decode(torch.stack([v for v, _ in states]).to(self.device))
            audio = self.audio.decode(torch.stack([a for _, a in states]).to(self.device))
        samples = round(self.seconds * self.audio.sample_rate)
        return AVBatch(video.float().cpu(), float(self.video.fps), audio[..., :samples].float().cpu(),
                       int(self.audio.sample_rate))

    def store(self, state: State) -> State:
        return state[0].detach().cpu(), state[1].detach().cpu()

    def models(self) -> list[torch.nn.Module]:
        """What sampling and decoding run, for the node layer's model management."""
        return [m for m in (self.video, self.audio, self.discriminator) if m is not None]

    def clip_bytes(self) -> int:
        """Bytes of one decoded clip (float32 frames and waveform), for the search's budget:
        the video VAE decodes 8x in space, the audio is ``seconds`` at the vocoder's rate."""
        _, frames, h, w = self.video_shape
        return 4 * (frames * 8 * h * 8 * w * 3 + round(self.seconds * self.audio.sample_rate))

    def to_latent(self, states: list[State]) -> dict:
        """{"samples": video latents (N, C, T, H, W), "audio": audio latents (N, C, mel, time)}."""
        return {"samples": torch.stack([v.detach().cpu() for v, _ in states]),
                "audio": torch.stack([a.detach().cpu() for _, a in states])}
