"""MMDisCo nodes: VideoCrafter2 and Auffusion coupled by MMDisCo's discriminator, loaded from
their official files in models/mmdisco/, and the generator the search nodes sample from (its
own joint sampler: the two models follow different noise schedules)."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import folder_paths
import torch
from comfy_api.latest import io

from ..generators.mmdisco import auffusion as auffusion_mod
from ..generators.mmdisco import discriminator as coupling_mod
from ..generators.mmdisco import videocrafter as videocrafter_mod
from ..generators.mmdisco.generator import MMDisCoGenerator
from . import types
from .models import (Need, device_for, device_input, dtype_input, file_choices, file_state, find, missing,
                     register_folder, subfolder_choices)
from .residency import pin
from .licences import licensed

FOLDER = "mmdisco"
register_folder(FOLDER, folder_paths.supported_pt_extensions)
VC2, AUFFUSION, COUPLING = ("videocrafter2/model.ckpt", "auffusion-full",
                            "auffusion_videocrafter2_vggsound.pt")

MMDisCo = io.Custom("AVITS_MMDISCO")


def _needs(videocrafter2, auffusion, coupling) -> list[Need]:
    """What the loader reads: VideoCrafter2's checkpoint, Auffusion's folder, the coupling."""
    return [Need(FOLDER, videocrafter2, "VideoCrafter2 checkpoint", videocrafter_mod.PUBLISHED),
            Need(FOLDER, auffusion, "Auffusion folder", auffusion_mod.PUBLISHED, is_dir=True),
            Need(FOLDER, coupling, "MMDisCo coupling checkpoint", coupling_mod.PUBLISHED)]


@dataclass
class MMDisCoModels:
    """The three loaded models, on ComfyUI's offload device until a search needs them."""

    video: videocrafter_mod.VideoCrafter2
    audio: auffusion_mod.Auffusion
    coupling: coupling_mod.MultimodalDiscriminator
    device: torch.device


class MMDisCoLoaderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_MMDisCoLoader", display_name="AVITS MMDisCo Loader",
            category="AVITS/generators",
            description=licensed("MMDisCo's Auffusion + VideoCrafter2 pair from models/mmdisco/: the "
                                 "VideoCrafter2 checkpoint, the Auffusion folder and the coupling "
                                 "discriminator.", "mmdisco"),
            inputs=[
                io.Combo.Input("videocrafter2", options=file_choices(FOLDER, VC2), default=VC2,
                               tooltip=f"VideoCrafter2's model.ckpt (base_512_v2) in models/mmdisco/"
                                       f"videocrafter2/: {videocrafter_mod.PUBLISHED}"),
                io.Combo.Input("auffusion", options=subfolder_choices(FOLDER, AUFFUSION), default=AUFFUSION,
                               tooltip=f"The Auffusion diffusers folder in models/mmdisco/: "
                                       f"{auffusion_mod.PUBLISHED}"),
                io.Combo.Input("coupling", options=file_choices(FOLDER, COUPLING), default=COUPLING,
                               tooltip=f"The coupling discriminator in models/mmdisco/: "
                                       f"{coupling_mod.PUBLISHED}"),
                dtype_input(),
                device_input("sampling"),
            ],
            outputs=[MMDisCo.Output(display_name="mmdisco")],
        )

    @classmethod
    def fingerprint_inputs(cls, videocrafter2, auffusion, coupling, dtype, device="default"):
        return ";".join([file_state(FOLDER, videocrafter2), file_state(FOLDER, auffusion),
                         file_state(FOLDER, coupling), dtype, device])

    @classmethod
    def validate_inputs(cls, videocrafter2, auffusion, coupling):
        return missing(_needs(videocrafter2, auffusion, coupling))

    @classmethod
    def execute(cls, videocrafter2, auffusion, coupling, dtype, device="default") -> io.NodeOutput:
        run_on, weights = device_for(device, dtype)
        offload = comfy.model_management.unet_offload_device()
        video_path, audio_path, coupling_path = map(find, _needs(videocrafter2, auffusion, coupling))
        video = videocrafter_mod.load_videocrafter2(video_path, weights, offload)
        audio = auffusion_mod.load_auffusion(audio_path, weights, offload)
        disc = coupling_mod.load_discriminator(coupling_path, offload)
        pin([video, audio, disc], run_on)  # the search places them where the latents run
        return io.NodeOutput(MMDisCoModels(video, audio, disc, run_on))


class MMDisCoGeneratorNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_MMDisCoGenerator", display_name="AVITS MMDisCo Generator",
            category="AVITS/generators",
            description=licensed("Joint audio + video by MMDisCo: VideoCrafter2 and Auffusion each with "
                                 "classifier-free guidance, kept in sync by the discriminator's gradient at "
                                 "every step, one ancestral DDPM step per modality on its own schedule. "
                                 "2 s: 16 frames at 8 fps (256 x 256) and 16 kHz sound.", "mmdisco"),
            inputs=[
                MMDisCo.Input("mmdisco", tooltip="From AVITS MMDisCo Loader."),
                io.String.Input("prompt", multiline=True, default="a dog barking in a park",
                                tooltip="The text both models and the discriminator read."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="DDPM steps (the reference: 50)."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=30.0, step=0.1,
                               tooltip="Classifier-free guidance of both models and of the "
                                       "discriminator's gradient (the reference: 8)."),
                io.Float.Input("joint_scale_video", default=8.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Strength of the coupling gradient on the video (the "
                                       "reference: 8)."),
                io.Float.Input("joint_scale_audio", default=1.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Strength of the coupling gradient on the audio (the "
                                       "reference: 1)."),
                io.Float.Input("seconds", default=2.0, min=2.0, max=2.0, step=0.5, advanced=True,
                               tooltip="Clip length: the released coupling is trained on 2 s."),
            ],
            outputs=[types.Generator.Output(display_name="generator")],
        )

    @classmethod
    def execute(cls, mmdisco: MMDisCoModels, prompt, steps, cfg, joint_scale_video, joint_scale_audio,
                seconds) -> io.NodeOutput:
        return io.NodeOutput(MMDisCoGenerator(
            mmdisco.video, mmdisco.audio, mmdisco.coupling, prompt.strip(), steps, cfg, cfg,
            joint_scale_video, joint_scale_audio, seconds, mmdisco.device))


NODES = [MMDisCoLoaderNode, MMDisCoGeneratorNode]
