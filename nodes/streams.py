"""What each ComfyUI model does with the sampler's sigma, stream by stream, and how many samples
it takes per call: the one table the bridge reads before any work.

A sampler integrates one flat ODE on one sigma. A joint model may run a stream on its own
schedule: MiniMax H3 maps the video sigma to its audio sigma and scales the audio velocity by
d sigma_a / d sigma_v, so the flat ODE equals the audio's own ODE. Then the audio part of a state
at step k carries noise sigma_a(k), and the sampler's flat ``denoised`` for the audio is
x_a - sigma_v * slope * v_a, not the audio's own clean estimate x_a - sigma_a * v_a.

| model (ComfyUI class)     | streams        | batch | stream sigmas at sampler sigma s            |
|---------------------------|----------------|-------|---------------------------------------------|
| LTXAV (LTX-2, 2.3, 2.5)   | video, audio   | any   | s, s                                        |
| MiniMaxH3                 | video, audio   | 1     | s, shifted(s, shift_video -> shift_audio)   |
| JavisDiTModel (this pack) | video, audio   | any   | s, s                                        |
| any model, plain latent   | one            | any   | s                                           |
| another nested latent     | as the latent  | any   | unknown                                     |

H3's two shifts are the ones MiniMaxH3SigmaShift puts in the model's transformer options
(the DiT's defaults, 12 and 3, without it). On a model whose stream sigmas are unknown, Best-of-N
and mutations of the initial noise work (step 0 is pure noise for every stream); a later-step
mutation or an x0 read is refused with the reason instead of guessed.
"""

from __future__ import annotations

from dataclasses import dataclass


def shifted_sigma(sigma: float, from_shift: float, to_shift: float) -> float:
    """The sigma on a schedule shifted by ``to_shift`` at the base-grid point where the schedule
    shifted by ``from_shift`` has ``sigma`` (MiniMax H3's closed form)."""
    base = sigma / (from_shift + sigma * (1.0 - from_shift))
    return to_shift * base / (1.0 + (to_shift - 1.0) * base)


def shifted_slope(sigma: float, from_shift: float, to_shift: float) -> float:
    """d sigma_to / d sigma_from at that point: the factor H3 puts on the audio velocity."""
    base = sigma / (from_shift + sigma * (1.0 - from_shift))
    return (to_shift * (1.0 + (from_shift - 1.0) * base) ** 2
            / (from_shift * (1.0 + (to_shift - 1.0) * base) ** 2))


@dataclass(frozen=True)
class Streams:
    """A model's streams: their count, the samples it takes per call, and for each stream
    (sigma, velocity factor) at a sampler sigma, or ``unknown`` (why the levels are not known)."""

    model: str
    count: int
    max_batch: int | None = None
    shifts: tuple[float, ...] | None = None
    """Per stream: None for the sampler's own sigma, else (from_shift, to_shift) as H3 maps it."""
    unknown: str = ""

    def levels(self, sigma: float) -> list[tuple[float, float]]:
        """Each stream's (own sigma, d own sigma / d sampler sigma) at the sampler's ``sigma``."""
        if self.unknown:
            raise ValueError(self.unknown)
        pairs = self.shifts or (None,) * self.count
        return [(sigma, 1.0) if p is None else
                (shifted_sigma(sigma, *p), shifted_slope(sigma, *p)) for p in pairs]


_SAME_SIGMA = {"LTXAV": "LTX-2", "JavisDiTModel": "JavisDiT"}


def streams_of(model_patcher, model_options: dict, count: int) -> Streams:
    """The table's row for the guider's model with a latent of ``count`` parts."""
    model = model_patcher.model
    name = type(model).__name__
    if count == 1:
        return Streams(name, 1)
    if name in _SAME_SIGMA:
        return Streams(_SAME_SIGMA[name], count)
    if name == "MiniMaxH3":
        dit = model.diffusion_model
        options = model_options.get("transformer_options", {})
        video = float(options.get("minimax_h3_sigma_shift_video", dit.sigma_shift_video))
        audio = float(options.get("minimax_h3_sigma_shift_audio", dit.sigma_shift_audio))
        return Streams("MiniMax H3", count, max_batch=1, shifts=(None, (video, audio)))
    return Streams(name, count, unknown=(
        f"the pack does not know at which noise level {name} runs each of its {count} latent "
        "streams, so it cannot mutate a later state or read a clean-sample prediction (x0) "
        "stream by stream; Best-of-N and EvoSearch from step 0 work on it"))
