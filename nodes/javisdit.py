"""JavisDiT v0.1 nodes: its files loaded as a ComfyUI MODEL plus decoders, its text conditioning,
its empty audio-video latent and its exact schedule. With CFGGuider (cfg 7) and euler they feed
AVITS ComfyUI AV Generator unchanged, so every search runs on it through ComfyUI's samplers."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import comfy.model_management
import comfy.text_encoders.t5
import node_helpers
import torch
from comfy.nested_tensor import NestedTensor
from comfy_api.latest import io

from ..generators.javisdit import audio_vae as audio_vae_mod
from ..generators.javisdit import dit as dit_mod
from ..generators.javisdit import prior as prior_mod
from ..generators.javisdit import schedule, sizes
from ..generators.javisdit import text as text_mod
from ..generators.javisdit import video_vae as video_vae_mod
from ..verifiers.imagebind.package import tokenizer as imagebind_tokenizer
from .imagebind import ImageBind
from .javisdit_model import load_javisdit
from .models import (Need, device_for, device_input, dtype_input, file_choices, file_state, find, missing,
                     register_folder, subfolder_choices)
from .residency import patcher, place
from .licences import licensed

FOLDER = "javisdit"
register_folder(FOLDER)
DIT, PRIOR, VIDEO_VAE, AUDIO_VAE = ("JavisDiT-v0.1-jav-240p4s", "JavisDiT-v0.1-prior",
                                    "OpenSora-VAE-v1.2", "audioldm2")
T5_FOLDER, T5_FILE = "text_encoders", "t5xxl_fp16.safetensors"
T5_TOKENIZER = os.path.join(os.path.dirname(comfy.text_encoders.t5.__file__), "t5_tokenizer")

JavisDiTText = io.Custom("AVITS_JAVISDIT_TEXT")

log = logging.getLogger(__name__)


@dataclass
class TextEncoders:
    """T5 and the spatio-temporal prior: what AVITS JavisDiT Text Encode runs."""

    t5: text_mod.T5TextEncoder
    prior: prior_mod.STPrior


class VideoDecoder:
    """The OpenSora VAE under ComfyUI's VAE call: ``decode(latent)`` -> (B, T, H, W, 3) in [0, 1]
    (what VAEDecode and the search bridge read)."""

    def __init__(self, vae: video_vae_mod.OpenSoraVAE) -> None:
        self.vae = vae

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if getattr(latent, "is_nested", False):
            latent = latent.unbind()[0]
        place("decode", [self.vae])
        frames = self.vae.decode(latent.to(patcher(self.vae).load_device))
        return ((frames.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 4, 1).cpu()


class _Rate:
    def __init__(self, rate: int) -> None:
        self.output_sample_rate = rate


class AudioDecoder:
    """The AudioLDM2 VAE + vocoder under the call LTXVAudioVAEDecode and the bridge make:
    ``decode(latent)`` -> (B, samples, 1) at ``first_stage_model.output_sample_rate``. The bridge
    cuts the sound to the picture's length, as the reference cuts it to the clip's."""

    def __init__(self, decoder: audio_vae_mod.AudioLDM2Decoder) -> None:
        self.decoder = decoder
        self.first_stage_model = _Rate(decoder.sample_rate)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if getattr(latent, "is_nested", False):
            latent = latent.unbind()[-1]
        place("decode", [self.decoder])
        return self.decoder.decode(latent.to(patcher(self.decoder).load_device)).float().cpu()[:, :, None]


def _needs(dit, prior, video_vae, audio_vae, t5) -> list[Need]:
    """What the loader reads: the four official folders and the T5 file."""
    return [Need(FOLDER, dit, "JavisDiT DiT folder", dit_mod.PUBLISHED, is_dir=True),
            Need(FOLDER, prior, "JavisDiT prior folder", prior_mod.PUBLISHED, is_dir=True),
            Need(FOLDER, video_vae, "OpenSora VAE folder", video_vae_mod.PUBLISHED, is_dir=True),
            Need(FOLDER, audio_vae, "AudioLDM2 folder", audio_vae_mod.PUBLISHED, is_dir=True),
            Need(T5_FOLDER, t5, "T5-XXL text encoder", text_mod.FILE_URL)]


class JavisDiTLoaderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_JavisDiTLoader", display_name="AVITS JavisDiT Loader",
            category="AVITS/generators",
            description=licensed("Loads JavisDiT v0.1 from its official folders in models/javisdit/ (and "
                                 "T5-XXL from models/text_encoders/): the DiT as a MODEL for ComfyUI's "
                                 "guiders and samplers, the video and audio decoders, and the text "
                                 "encoders for AVITS JavisDiT Text Encode.", "javisdit"),
            inputs=[
                io.Combo.Input("dit", options=subfolder_choices(FOLDER, DIT), default=DIT,
                               tooltip=f"The DiT folder (config.json + model.safetensors) in "
                                       f"models/javisdit/: {dit_mod.PUBLISHED}"),
                io.Combo.Input("prior", options=subfolder_choices(FOLDER, PRIOR), default=PRIOR,
                               tooltip=f"The spatio-temporal prior folder: {prior_mod.PUBLISHED} "
                                       f"(it reads ImageBind's text features)."),
                io.Combo.Input("video_vae", options=subfolder_choices(FOLDER, VIDEO_VAE), default=VIDEO_VAE,
                               tooltip=f"The OpenSora VAE 1.2 folder: {video_vae_mod.PUBLISHED}"),
                io.Combo.Input("audio_vae", options=subfolder_choices(FOLDER, AUDIO_VAE), default=AUDIO_VAE,
                               tooltip=f"The AudioLDM2 folder with its vae/ and vocoder/ subfolders: "
                                       f"{audio_vae_mod.PUBLISHED} (CC BY-NC-SA 4.0)"),
                io.Combo.Input("t5", options=file_choices(T5_FOLDER, T5_FILE), default=T5_FILE,
                               tooltip=f"T5 v1.1 XXL in models/text_encoders/ (the fp16 file "
                                       f"Flux and SD3 use: {text_mod.FILE_URL})."),
                dtype_input(),
                device_input("the DiT"),
            ],
            outputs=[io.Model.Output(display_name="model"),
                     io.Vae.Output(display_name="video_vae"),
                     io.Vae.Output(display_name="audio_vae"),
                     JavisDiTText.Output(display_name="text_encoders")],
        )

    @classmethod
    def fingerprint_inputs(cls, dit, prior, video_vae, audio_vae, t5, dtype, device="default"):
        folders = [file_state(FOLDER, n) for n in (dit, prior, video_vae, audio_vae)]
        return ";".join(folders + [file_state(T5_FOLDER, t5), dtype, device])

    @classmethod
    def validate_inputs(cls, dit, prior, video_vae, audio_vae, t5):
        return missing(_needs(dit, prior, video_vae, audio_vae, t5))

    @classmethod
    def execute(cls, dit, prior, video_vae, audio_vae, t5, dtype, device="default") -> io.NodeOutput:
        run_on, weights = device_for(device, dtype)
        offload = comfy.model_management.unet_offload_device()
        paths = map(find, _needs(dit, prior, video_vae, audio_vae, t5))
        dit_path, prior_path, video_path, audio_path, t5_path = paths
        model = load_javisdit(dit_path, weights, run_on)
        # the SDXL-style image VAE can overflow in fp16: fp16 devices decode in fp32
        video = video_vae_mod.load_opensora_vae(
            video_path, torch.float32 if weights == torch.float16 else weights, offload)
        audio = audio_vae_mod.load_audioldm2(audio_path, torch.float32, offload)
        encoders = TextEncoders(text_mod.load_t5(t5_path, T5_TOKENIZER, weights),
                                prior_mod.load_prior(prior_path, torch.float32, offload))
        return io.NodeOutput(model, VideoDecoder(video), AudioDecoder(audio), encoders)


class JavisDiTTextEncodeNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_JavisDiTTextEncode", display_name="AVITS JavisDiT Text Encode",
            category="AVITS/generators",
            description=licensed("The prompt as JavisDiT reads it (the reference's cleaning and the "
                                 "' aesthetic score: 6.5.' suffix): T5 states for the text and ImageBind "
                                 "text features for the spatio-temporal prior. The negative is the "
                                 "model's learned null caption and null prior (JavisDiT has no negative "
                                 "prompt).", "javisdit"),
            inputs=[
                JavisDiTText.Input("text_encoders", tooltip="From AVITS JavisDiT Loader."),
                ImageBind.Input("imagebind", tooltip="From AVITS ImageBind Loader (the prior "
                                                     "reads ImageBind-Huge's text trunk; the "
                                                     "verifiers can share this loader)."),
                io.String.Input("text", multiline=True, dynamic_prompts=True,
                                tooltip="The prompt. More than 300 T5 tokens are cut, with a "
                                        "warning."),
            ],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative")],
        )

    @classmethod
    def execute(cls, text_encoders: TextEncoders, imagebind, text) -> io.NodeOutput:
        prompt = text_mod.preprocess_prompt(text)
        place("encode", [text_encoders.t5.model])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y, mask = text_encoders.t5.encode([prompt])
        for w in caught:
            log.warning("AVITS JavisDiT Text Encode: %s", w.message)
        place("encode", [imagebind, text_encoders.prior])
        with torch.no_grad():
            hidden = prior_mod.text_hidden(imagebind, prior_mod.text_tokens([prompt], imagebind_tokenizer()))
            dist = text_encoders.prior.distribution(hidden)
        y, mask = y[:, 0].float().cpu(), mask.cpu()
        positive = [[y, {"attention_mask": mask, "prior_mean": dist.mean.float().cpu(),
                         "prior_std": dist.std.float().cpu()}]]
        # the reference's unconditional pass: the null caption under the prompt's text mask
        negative = [[torch.zeros_like(y), {"attention_mask": mask, "javisdit_null": True}]]
        return io.NodeOutput(positive, negative)


class EmptyJavisDiTLatentNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_EmptyJavisDiTLatent", display_name="AVITS Empty JavisDiT Latent",
            category="AVITS/generators",
            description="An empty JavisDiT audio-video latent (video (4, T', H/8, W/8) and audio "
                        "(8, L, 16), as a NestedTensor); the conditioning passes through with the "
                        "clip's fps and pixel size, which the model reads.",
            inputs=[
                io.Conditioning.Input("positive", tooltip="From AVITS JavisDiT Text Encode."),
                io.Conditioning.Input("negative", tooltip="From AVITS JavisDiT Text Encode."),
                io.Int.Input("seconds", default=4, min=2, max=16, step=2,
                             tooltip="The reference's clip lengths: 2, 4, 8 or 16 s give 51, 102, "
                                     "204 or 408 frames (4 s: 102 frames, 4.25 s of sound at "
                                     "24 fps). The 240p4s checkpoint is trained on 4 s."),
                io.Combo.Input("resolution", options=sizes.choices(), default="240p 9:16 (240x426)",
                               tooltip="Height x width from the reference's tables; the 240p4s "
                                       "checkpoint is trained at 240p 9:16."),
                io.Float.Input("fps", default=24.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frame rate the model is told (JavisDiT is trained at 24)."),
            ],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative"),
                     io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def execute(cls, positive, negative, seconds, resolution, fps) -> io.NodeOutput:
        if seconds not in (2, 4, 8, 16):
            raise ValueError(f"seconds must be 2, 4, 8 or 16 (the reference's lengths), got {seconds}")
        height, width = sizes.parse(resolution)
        return io.NodeOutput(*empty_latent(positive, negative, video_vae_mod.num_frames_for(f"{seconds}s"),
                                           height, width, fps))


def empty_latent(positive, negative, num_frames: int, height: int, width: int, fps: float):
    """(positive, negative, latent) for a clip of ``num_frames`` at height x width: the zero
    NestedTensor latent, and the clip's fps and pixel size on the latent and the conditioning."""
    video = video_vae_mod.video_latent_shape(num_frames, height, width)
    audio = audio_vae_mod.audio_latent_shape(audio_vae_mod.audio_seconds(num_frames, fps))
    info = {"fps": float(fps), "height": int(height), "width": int(width), "num_frames": int(num_frames)}
    latent = {"samples": NestedTensor([torch.zeros(1, *video), torch.zeros(1, *audio)]), "javisdit": info}
    values = {"javisdit_video": info}
    return (node_helpers.conditioning_set_values(positive, values),
            node_helpers.conditioning_set_values(negative, values), latent)


class JavisDiTSchedulerNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_JavisDiTScheduler", display_name="AVITS JavisDiT Scheduler",
            category="AVITS/generators",
            description="The reference's exact sigmas: shift(1 - i/steps) and a final 0, the shift "
                        "from the clip's pixel height, width and frame count (3.42 at 240 x 426 "
                        "x 102). Core's simple scheduler would snap them to a 1/1000 grid.",
            inputs=[
                io.Int.Input("steps", default=30, min=1, max=1000,
                             tooltip="Sampling steps (the reference: 30)."),
                io.Latent.Input("latent", tooltip="From AVITS Empty JavisDiT Latent (its size "
                                                  "sets the shift)."),
            ],
            outputs=[io.Sigmas.Output(display_name="sigmas")],
        )

    @classmethod
    def execute(cls, steps, latent) -> io.NodeOutput:
        info = latent.get("javisdit")
        if info is None:
            raise ValueError("the latent does not come from AVITS Empty JavisDiT Latent: its pixel "
                             "size and frame count, which set the shift, are unknown")
        ratio = schedule.shift_ratio(info["height"], info["width"], info["num_frames"])
        return io.NodeOutput(torch.tensor(schedule.sigmas(steps, ratio), dtype=torch.float32))


NODES = [JavisDiTLoaderNode, JavisDiTTextEncodeNode, EmptyJavisDiTLatentNode, JavisDiTSchedulerNode]
