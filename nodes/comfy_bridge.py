"""The generator protocol over any model ComfyUI can sample: a GUIDER (any guider: CFG, basic,
dual or multimodal), a SAMPLER, SIGMAS and a LATENT (a plain latent or an LTX-2 NestedTensor of
video and audio), decoded by the VAE and, for joint models, the audio VAE. Everything runs
through ComfyUI's own code: noise as RandomNoise makes it, step ranges by splitting the sigmas
(as SplitSigmas), the guider's own sample(), the model's own noise scaling for mutations.

A state at step 0 is an initial noise; at a later step it is what the sampler hands back when
stopped there (for flow models x_k / (1 - sigma_k), the "latent" a second SamplerCustomAdvanced
continues from with zero noise). With a noise mask (guide frames, inpainting) a later state also
keeps the candidate's initial noise, so the masked regions follow exactly the schedule an
unsplit run gives them. States are kept per candidate with batch size 1.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import comfy.model_management
import comfy.sample
import comfy.sampler_helpers
import comfy.utils
import torch
from comfy.nested_tensor import NestedTensor
from comfy_api.latest import io

from ..core.batch import AVBatch
from ..core.checks import finite
from ..core.generator import LATER_MUTATION, X0_PREDICTION, StepCallback, mutate_flow_state
from . import types
from .streams import streams_of
from .licences import licensed

SILENT_RATE = 16000
"""Sample rate of the silent track given to video-only models (the verifiers need audio)."""


def _parts(x) -> list[torch.Tensor]:
    return list(x.unbind()) if getattr(x, "is_nested", False) else [x]


def _like(template, parts: list[torch.Tensor]):
    return NestedTensor(parts) if getattr(template, "is_nested", False) else parts[0]


def _cat(states: list):
    return _like(states[0], [torch.cat(p) for p in zip(*(_parts(s) for s in states))])


def _split(x) -> list:
    parts = _parts(x)
    return [_like(x, [p[i:i + 1] for p in parts]) for i in range(parts[0].shape[0])]


@dataclass
class Guided:
    """A later state of a masked latent: the sampler's state and the candidate's initial noise."""

    latent: Any
    noise: Any

    def to(self, *args, **kwargs) -> "Guided":
        return Guided(self.latent.to(*args, **kwargs), self.noise.to(*args, **kwargs))


def _latent(state):
    return state.latent if isinstance(state, Guided) else state


def _stochastic(sampler) -> bool:
    """A sampler draws noise while it runs when its function takes a noise sampler (k-diffusion's
    ancestral and SDE samplers); one we cannot inspect counts as stochastic, which is safe."""
    fn = getattr(sampler, "sampler_function", None)
    try:
        return fn is None or "noise_sampler" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True


WINNER_DECODERS = ("vae", "scoring_vae")
"""Which decoder gives the search node's frames of the winner: the full VAE, decoded once, or
the scoring decoder's clip (when the winner's LATENT goes on to a second stage anyway)."""


def _vae_name(vae) -> str:
    return type(getattr(vae, "first_stage_model", vae)).__name__


class ComfyAVGenerator:
    """Candidates sampled by ComfyUI's samplers from one LATENT of batch size 1."""

    def __init__(self, guider, sampler, sigmas: torch.Tensor, latent: dict, vae, audio_vae=None,
                 prompt: str = "", fps: float = 24.0, max_batch: int = 1, scoring_vae=None,
                 winner_decoder: str = "vae") -> None:
        samples = latent["samples"]
        if _parts(samples)[0].shape[0] != 1:
            raise ValueError(f"the latent has batch size {_parts(samples)[0].shape[0]}; give one "
                             "of batch size 1: the search makes the batch of candidates itself")
        if sigmas.ndim != 1 or len(sigmas) < 2:
            raise ValueError(f"need a schedule of at least 2 sigmas, got {tuple(sigmas.shape)}")
        if winner_decoder not in WINNER_DECODERS:
            raise ValueError(f"winner_decoder must be one of {WINNER_DECODERS}, got '{winner_decoder}'")
        self.guider, self.sampler, self.vae, self.audio_vae = guider, sampler, vae, audio_vae
        self.scoring_vae = scoring_vae
        self._winner_vae = scoring_vae if winner_decoder == "scoring_vae" and scoring_vae else vae
        self.decoders = {"score": self._label(scoring_vae or vae), "winner": self._label(self._winner_vae)}
        self.schedule = sigmas.detach().float().cpu()
        self.latent = latent
        self._samples = comfy.sample.fix_empty_latent_channels(
            guider.model_patcher, samples, latent.get("downscale_ratio_spacial"),
            latent.get("downscale_ratio_temporal"))
        self._mask = latent.get("noise_mask")
        self.prompt = prompt
        self.fps = finite("fps", fps, 0, 240, lo_open=True)
        options = getattr(guider, "model_options", guider.model_patcher.model_options)
        self.streams = streams_of(guider.model_patcher, options, len(_parts(samples)))
        asked = int(finite("max_batch", max_batch, 1, 4096, integer=True))
        # a model that takes one sample per call (MiniMax H3) runs them one at a time
        self.max_batch = min(asked, self.streams.max_batch or asked)
        self.steps = len(self.schedule) - 1
        self.deterministic = not _stochastic(sampler)
        self.nfe = 0

    # --- the schedule and the noise ------------------------------------------------------------
    def sigmas(self) -> list[float]:
        return self.schedule.tolist()

    def cannot(self, need: str) -> str | None:
        """Later mutations and x0 reads need each stream's noise level (nodes/streams.py)."""
        if need in (LATER_MUTATION, X0_PREDICTION) and self.streams.unknown:
            return self.streams.unknown
        return None

    def initial_noise(self, seeds: Sequence[int]) -> list:
        """The noise RandomNoise(seed) gives for the latent (one generator, stream by stream)."""
        return [comfy.sample.prepare_noise(self._samples, int(s)) for s in seeds]

    def mutate(self, state, step: int, beta: float, seed: int, mode: str):
        """Step 0: sqrt(1 - beta^2) noise + beta eps. Later: eps added to the noisy latent the
        model sees (model_sampling.noise_scaling), only where the noise mask lets the sampler
        denoise (guide frames stay as they are); scaled as the reference scales it, by the raw
        timestep 1 - step / steps before any schedule shift (0.667 at step 10 of 30: the base
        grid every stream's schedule is shifted from), or for 'variance_preserving' by each
        stream's own sigma at the step (H3's audio runs on its own shifted schedule)."""
        if isinstance(state, Guided):
            return Guided(self.mutate(state.latent, step, beta, seed, mode), state.noise)
        eps = comfy.sample.prepare_noise(state, int(seed))
        sigma = float(self.schedule[step])
        if step == 0:
            return _like(state, [mutate_flow_state(x, e, 0, sigma, beta, mode)
                                 for x, e in zip(_parts(state), _parts(eps))])
        levels = self.streams.levels(sigma)
        model = self.guider.model_patcher.model
        sampling = self.guider.model_patcher.get_model_object("model_sampling")
        flat, shapes = comfy.utils.pack_latents(_parts(state))
        s = torch.tensor(sigma)
        x = sampling.noise_scaling(s, torch.zeros_like(flat), model.process_latent_in(flat))
        stds = [1 - step / self.steps if mode == "reference" else own for own, _ in levels]
        moved, _ = comfy.utils.pack_latents(
            [mutate_flow_state(p, e, step, std, beta, mode) for p, e, std in
             zip(comfy.utils.unpack_latents(x, shapes), _parts(eps), stds)])
        mask = self._flat_mask(shapes, flat.device)
        if mask is not None:
            moved = x + mask * (moved - x)
        out = model.process_latent_out(sampling.inverse_noise_scaling(s, moved))
        return _like(state, comfy.utils.unpack_latents(out, shapes))

    def _part_masks(self, shapes, device) -> list[torch.Tensor]:
        """The noise mask per latent part, shaped as the sampler prepares it (1: denoise)."""
        masks = _parts(self._mask)[:len(shapes)]
        masks += [torch.ones(sh) for sh in shapes[len(masks):]]
        return [comfy.sampler_helpers.prepare_mask(m, sh, device).float() for m, sh in zip(masks, shapes)]

    def _flat_mask(self, shapes, device) -> torch.Tensor | None:
        if self._mask is None:
            return None
        return comfy.utils.pack_latents(self._part_masks(shapes, device))[0]

    # --- sampling -------------------------------------------------------------------------------
    def denoise(self, states: list, start: int, end: int, seeds: Sequence[int] = (),
                record: Sequence[int] = (), on_step: StepCallback | None = None):
        """The states from step ``start`` to ``end`` through guider.sample on sigma ranges,
        stopping at every step in ``record``. A deterministic sampler runs up to ``max_batch``
        candidates per call; a stochastic one runs each alone with its own seed (so its noise
        does not depend on the batch)."""
        if not 0 <= start <= end <= self.steps:
            raise ValueError(f"need 0 <= start <= end <= {self.steps}, got {start}, {end}")
        stops = sorted({r for r in record if start < r < end} | {end})
        recorded = {r: list(states) for r in record if r == start}
        seeds = list(seeds) or list(range(len(states)))
        current, at = list(states), start
        for stop in stops:
            if stop > at:
                current = self._run(current, seeds, at, stop, on_step)
            at = stop
            if stop in record:
                recorded[stop] = list(current)
        return current, recorded

    def _groups(self, seeds: list[int]) -> list[tuple[int, int]]:
        """Index ranges sampled in one call: with a deterministic sampler up to ``max_batch``
        candidates of consecutive seeds (the sampler's seed reaches the model's conditioning,
        row i as seed + i, as JavisDiT's prior draws it); a stochastic sampler runs each alone."""
        group = self.max_batch if self.deterministic else 1
        ranges, i = [], 0
        while i < len(seeds):
            j = i + 1
            while j < len(seeds) and j - i < group and seeds[j] == seeds[i] + (j - i):
                j += 1
            ranges.append((i, j))
            i = j
        return ranges

    def denoise_predicting(self, states: list, start: int, end: int, seeds: Sequence[int] = (),
                           on_step: StepCallback | None = None) -> tuple[list, list]:
        """As denoise, with the sampler's own ``denoised`` of the last step (from its callback:
        no extra model call), in latent space."""
        if not 0 <= start < end <= self.steps:
            raise ValueError(f"need 0 <= start < end <= {self.steps}, got {start}, {end}")
        if self.streams.unknown:
            raise ValueError(self.streams.unknown)
        x0: list = []
        finals = self._run(list(states), list(seeds) or list(range(len(states))), start, end,
                           on_step, x0)
        return finals, x0

    def _run(self, states: list, seeds: list[int], start: int, end: int, on_step,
             x0: list | None = None) -> list:
        out = []
        for i, j in self._groups(seeds):
            # a deterministic sampler sees the candidate's own seed in every segment; a
            # stochastic one a fresh noise stream per segment
            part = states[i:j]
            seed = seeds[i] if self.deterministic else seeds[i] + 1_000_003 * start
            initial = _cat([s.noise if isinstance(s, Guided) else s for s in part])
            noise, latent = self._inputs(part, initial, start)
            last: list | None = [] if x0 is not None else None
            done = _split(self._sample(noise, latent, len(part), start, end, seed, on_step, last))
            if x0 is not None and last:
                x0 += _split(self._latent_out(last[-1]))
            out += (done if self._mask is None else
                    [Guided(d, n) for d, n in zip(done, _split(initial))])
        return out

    def _inputs(self, states: list, initial, start: int):
        """guider.sample's noise and latent_image: from step 0, the noise and the latent; later,
        the state with zero noise, except in masked regions, which get the original latent and
        the candidate's initial noise, as in an unsplit run."""
        n = len(states)
        original = _cat([self._samples] * n)
        if start == 0:
            return initial, original
        state = _cat([_latent(s) for s in states])
        if self._mask is None:
            return _like(state, [torch.zeros_like(p) for p in _parts(state)]), state
        masks = self._part_masks([p.shape for p in _parts(state)], _parts(state)[0].device)
        noise = [e * (1 - m) for e, m in zip(_parts(initial), masks)]
        latent = [o * (1 - m) + x * m for o, x, m in zip(_parts(original), _parts(state), masks)]
        return _like(state, noise), _like(state, latent)

    def _own_x0(self, denoised, x, sigma: float):
        """Each stream's own clean estimate from the sampler's ``denoised`` = x - sigma slope v:
        x0_s = x - sigma_s v = x + sigma_s / (sigma slope) (denoised - x); the sampler's own
        where a stream runs on the sampler's sigma."""
        out = []
        for d, xp, (own, slope) in zip(_parts(denoised), _parts(x), self.streams.levels(sigma)):
            d = d.detach()
            out.append(d.clone() if (own, slope) == (sigma, 1.0) else
                       xp + (own / (sigma * slope)) * (d - xp))
        return _like(denoised, out)

    def _latent_out(self, denoised):
        """A callback's ``denoised`` (the model's processed latent) as the latent it stands for."""
        parts = _parts(denoised)
        flat, shapes = comfy.utils.pack_latents(parts)
        out = self.guider.model_patcher.model.process_latent_out(flat)
        out = out.to(comfy.model_management.intermediate_device())
        return _like(denoised, comfy.utils.unpack_latents(out, shapes))

    def _sample(self, noise, latent, n: int, start: int, end: int, seed: int, on_step,
                denoised: list | None = None):
        calls = []
        own = vars(self.guider).get("predict_noise")
        predict = self.guider.predict_noise

        def counted(*args, **kwargs):  # one call per denoiser evaluation of the whole batch
            calls.append(1)
            return predict(*args, **kwargs)

        def callback(step, x0, xs, total):
            if denoised is not None and step == total - 1:
                denoised.append(self._own_x0(x0, xs, float(self.schedule[start + step])))
            if on_step is not None:
                on_step(n)

        self.guider.predict_noise = counted
        try:
            out = self.guider.sample(noise, latent, self.sampler, self.schedule[start:end + 1],
                                     denoise_mask=self._mask, callback=callback,
                                     disable_pbar=True, seed=seed)
        finally:
            if own is None:
                del self.guider.predict_noise
            else:
                self.guider.predict_noise = own
            self.nfe += n * len(calls)
        return out.to(comfy.model_management.intermediate_device())

    # --- finished samples ----------------------------------------------------------------------
    def decode(self, states: list) -> AVBatch:
        """The clips the verifiers score: through the scoring VAE where one is given."""
        return self._decode(states, self.scoring_vae or self.vae)

    def decode_winner(self, states: list) -> AVBatch:
        """The winner's clip as the node outputs it (``decoders["winner"]``)."""
        return self._decode(states, self._winner_vae)

    def _label(self, vae) -> str:
        """How the report names a decoder: the input it came in on and its class."""
        return f"{'scoring_vae' if vae is self.scoring_vae else 'vae'} ({_vae_name(vae)})"

    def _decode(self, states: list, vae) -> AVBatch:
        parts = _parts(_cat([_latent(s) for s in states]))
        video = vae.decode(parts[0]).float().cpu()
        if video.ndim == 4:  # an image model: each candidate is one frame
            video = video[:, None]
        if self.audio_vae is not None and len(parts) > 1:
            audio = self.audio_vae.decode(parts[-1]).movedim(-1, 1).float().cpu()
            rate = int(self.audio_vae.first_stage_model.output_sample_rate)
            # sound decoded past the picture's end (a latent rounded up) is cut to the clip
            audio = audio[..., :max(1, round(video.shape[1] / self.fps * rate))]
        else:
            audio = torch.zeros(video.shape[0], 1, max(1, round(video.shape[1] / self.fps * SILENT_RATE)))
            rate = SILENT_RATE
        return AVBatch(video.clamp(0, 1), self.fps, audio, rate)

    def clip_bytes(self) -> int:
        """Bytes of one decoded clip (float32 frames and sound) as the scoring decoder gives it,
        read off the latent and the decoder's upscale ratios, so the search's memory limit
        (max_chunk_gb) guards it before any work; 0 where the decoder does not say them."""
        ratio = getattr(self.scoring_vae or self.vae, "upscale_ratio", None)
        if ratio is None:
            return 0
        video = _parts(self._samples)[0]
        if video.ndim == 4:  # an image model: one frame of H x W
            frames, (h, w) = 1, [int(n) * int(ratio if isinstance(ratio, (int, float)) else ratio[-1])
                                 for n in video.shape[-2:]]
        else:
            t, ph, pw = ratio
            frames = int(t(video.shape[2])) if callable(t) else video.shape[2] * int(t)
            h, w = video.shape[3] * int(ph), video.shape[4] * int(pw)
        model = getattr(self.audio_vae, "first_stage_model", None)
        rate = int(getattr(model, "output_sample_rate", SILENT_RATE)) if self.audio_vae else SILENT_RATE
        samples = 2 * round(frames / self.fps * rate)  # stereo at most
        return 4 * (frames * h * w * 3 + samples)

    def store(self, state):
        return state.to(comfy.model_management.intermediate_device())

    def to_latent(self, states: list) -> dict:
        out = {k: v for k, v in self.latent.items()
               if k not in ("samples", "batch_index", "downscale_ratio_spacial", "downscale_ratio_temporal")}
        out["samples"] = _cat([_latent(s) for s in states])
        return out


class ComfyAVGeneratorNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ComfyAVGenerator", display_name="AVITS ComfyUI AV Generator",
            category="AVITS/generators",
            description=licensed("Wraps the graph you would give SamplerCustomAdvanced (guider, sampler, "
                                 "sigmas, latent) plus the VAEs, so a search node samples candidates with "
                                 "ComfyUI's own samplers: LTX-2 audio-video latents or any MODEL's.", "comfy"),
            inputs=[
                io.Guider.Input("guider", tooltip="Any guider: CFGGuider, BasicGuider, a dual or "
                                                  "multimodal audio/video guider."),
                io.Sampler.Input("sampler", tooltip="From KSamplerSelect or any SAMPLER node; an "
                                                    "ancestral (noisy) sampler is run candidate by "
                                                    "candidate with each candidate's seed."),
                io.Sigmas.Input("sigmas", tooltip="The full schedule (e.g. LTXVScheduler, or the "
                                                  "distilled model's 8 manual sigmas)."),
                io.Latent.Input("latent", tooltip="A batch-1 latent: LTXVConcatAVLatent for LTX-2 "
                                                  "audio-video, or any empty latent (its noise "
                                                  "mask is kept: guide frames are never noised)."),
                io.Vae.Input("vae", tooltip="The video (or image) VAE."),
                io.Vae.Input("audio_vae", optional=True,
                             tooltip="LTX-2's audio VAE (LTXVAudioVAELoader); without it a video "
                                     "model's candidates get a silent track."),
                io.String.Input("prompt", default="", multiline=True, optional=True,
                                tooltip="The text the verifiers read (the conditioning carries "
                                        "none); the search node's prompt overrides it."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=1.0, optional=True,
                               tooltip="Frame rate of the decoded video (LTXVConditioning's)."),
                io.Int.Input("max_batch", default=1, min=1, max=256, optional=True, advanced=True,
                             tooltip="Candidates sampled through the model at once. 1 (default): a "
                                     "candidate is exactly what SamplerCustomAdvanced gives for its "
                                     "seed, bit for bit. More is faster on a big GPU, but the "
                                     "batched matmuls differ at float rounding (~5e-7). Models "
                                     "that take one sample per call (MiniMax H3) run one at a time."),
                io.Vae.Input("scoring_vae", optional=True,
                             tooltip="A cheaper decoder the verifiers score candidates through "
                                     "(a TAE such as taeltx_2 from VAELoader); the report names "
                                     "it. Check how well it ranks on your model with the "
                                     "evaluation's compare_decoders."),
                io.Combo.Input("winner_decoder", options=list(WINNER_DECODERS), default="vae",
                               optional=True, advanced=True,
                               tooltip="With a scoring VAE: decode the winner's frames once with "
                                       "the full VAE (vae), or output the scoring decoder's clip "
                                       "(scoring_vae) when the LATENT goes on to a second stage."),
            ],
            outputs=[types.Generator.Output(display_name="generator")],
        )

    @classmethod
    def execute(cls, guider, sampler, sigmas, latent, vae, audio_vae=None, prompt="", fps=25.0,
                max_batch=1, scoring_vae=None, winner_decoder="vae") -> io.NodeOutput:
        return io.NodeOutput(ComfyAVGenerator(guider, sampler, sigmas, latent, vae, audio_vae,
                                              prompt.strip(), fps, max_batch, scoring_vae,
                                              winner_decoder))


NODES = [ComfyAVGeneratorNode]
