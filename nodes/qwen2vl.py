"""Qwen2-VL verifier nodes: VideoReward (its loader and the verifier, so several reward choices
share one loaded model) and VQAScore. Both load from a folder in ComfyUI's models folder."""

from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io

from ..verifiers.videoreward import OUTPUTS, VideoReward, load_videoreward
from ..verifiers.videoreward.checkpoint import PUBLISHED as VIDEOREWARD_PUBLISHED
from ..verifiers.vqascore import PUBLISHED as VQASCORE_PUBLISHED
from ..verifiers.vqascore import VQAScore, load_vqascore
from . import types
from .models import Need, dtype_for, dtype_input, file_state, find, folder_input, missing, register_folder
from .verifiers import NAME_TOOLTIP
from .licences import licensed

VIDEOREWARD, VIDEOREWARD_DEFAULT = "videoreward", "VideoReward"
VQASCORE, VQASCORE_DEFAULT = "vqascore", "Qwen2-VL-2B-Instruct"
for _folder in (VIDEOREWARD, VQASCORE):
    register_folder(_folder)

VideoRewardModel = io.Custom("AVITS_VIDEOREWARD")
OUTPUT_CHOICES = {"ta": ("ta",), "overall": ("overall",), "vq": ("vq",), "mq": ("mq",),
                  "vq, mq, ta, overall": OUTPUTS}


def _videoreward(folder: str) -> Need:
    return Need(VIDEOREWARD, folder, "VideoReward checkpoint folder", VIDEOREWARD_PUBLISHED, is_dir=True)


def _vqascore(folder: str) -> Need:
    return Need(VQASCORE, folder, "VQAScore model folder", VQASCORE_PUBLISHED, is_dir=True)


def _on_offload_device(model):
    model.network.to(comfy.model_management.unet_offload_device())
    return model


class VideoRewardLoaderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_VideoRewardLoader", display_name="AVITS VideoReward Loader",
            category="AVITS/verifiers",
            description=licensed("Loads VideoReward (VideoAlign: Qwen2-VL-2B with its reward head) from a "
                                 "folder in models/videoreward/ in the layout it is published in "
                                 "(model_config.json, checkpoint-*/model.pth, checkpoint-*/tokenizer/).", "videoreward"),
            inputs=[
                folder_input(VIDEOREWARD, VIDEOREWARD_DEFAULT,
                             f"A folder in models/videoreward/; the official one is "
                             f"{VIDEOREWARD_PUBLISHED}."),
                dtype_input(),
            ],
            outputs=[VideoRewardModel.Output(display_name="videoreward")],
        )

    @classmethod
    def fingerprint_inputs(cls, folder, dtype):
        return file_state(VIDEOREWARD, folder)

    @classmethod
    def validate_inputs(cls, folder):
        return missing([_videoreward(folder)])

    @classmethod
    def execute(cls, folder, dtype) -> io.NodeOutput:
        path = find(_videoreward(folder))
        return io.NodeOutput(_on_offload_device(load_videoreward(path, dtype_for(dtype))))


class VideoRewardNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_VideoReward", display_name="AVITS VideoReward", category="AVITS/verifiers",
            description=licensed("VideoReward's ratings from one pass, normalised as published: text "
                                 "alignment (ta, the paper's text verifier), visual quality (vq), motion "
                                 "quality (mq) and their sum (overall). Frames at 2 fps, up to 448 x 448.", "videoreward"),
            inputs=[VideoRewardModel.Input("videoreward", tooltip="From AVITS VideoReward Loader."),
                    io.Combo.Input("outputs", options=list(OUTPUT_CHOICES), default="ta",
                                   tooltip="The rewards to give; each is named <name>_<output>."),
                    io.String.Input("name", default="videoreward", advanced=True, tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, videoreward, outputs, name) -> io.NodeOutput:
        return io.NodeOutput([VideoReward(videoreward, OUTPUT_CHOICES[outputs], name)])


class VQAScoreNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_VQAScore", display_name="AVITS VQAScore", category="AVITS/verifiers",
            description=licensed("VQAScore on a Qwen2-VL model: the probability that it answers 'Yes' "
                                 "to whether the video shows the prompt. Optional; about 100x the cost of "
                                 "VideoReward with the paper's 11B model, far less with Qwen2-VL-2B.", "qwen2vl"),
            inputs=[
                folder_input(VQASCORE, VQASCORE_DEFAULT,
                             f"A Qwen2-VL model folder (hub layout) in models/vqascore/, e.g. "
                             f"{VQASCORE_PUBLISHED}."),
                dtype_input(),
                io.String.Input("name", default="vqascore", advanced=True, tooltip=NAME_TOOLTIP),
            ],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def fingerprint_inputs(cls, folder, dtype, name):
        return file_state(VQASCORE, folder) + name

    @classmethod
    def validate_inputs(cls, folder):
        return missing([_vqascore(folder)])

    @classmethod
    def execute(cls, folder, dtype, name) -> io.NodeOutput:
        path = find(_vqascore(folder))
        return io.NodeOutput([VQAScore(_on_offload_device(load_vqascore(path, dtype_for(dtype))), name)])


NODES = [VideoRewardLoaderNode, VideoRewardNode, VQAScoreNode]
