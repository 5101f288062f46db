"""ImageBind nodes: one loader, and the verifiers that share its model (JavisScore, AVHScore,
TV / TA / AV similarity). Several verifier nodes on one loader embed each clip once."""

from __future__ import annotations

import comfy.model_management
import folder_paths
from comfy_api.latest import io

from ..verifiers.imagebind import AVHScore, ImageBindScore, JavisScore, load_imagebind
from ..verifiers.imagebind.checkpoint import PUBLISHED
from . import types
from .models import Need, dtype_for, dtype_input, file_choices, file_state, find, missing, register_folder
from .verifiers import NAME_TOOLTIP
from .licences import licensed

FOLDER, DEFAULT = "imagebind", "imagebind_huge.pth"
register_folder(FOLDER, folder_paths.supported_pt_extensions)

ImageBind = io.Custom("AVITS_IMAGEBIND")


def _need(ckpt_name: str) -> Need:
    return Need(FOLDER, ckpt_name, "ImageBind checkpoint", PUBLISHED)


class ImageBindLoaderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ImageBindLoader", display_name="AVITS ImageBind Loader",
            category="AVITS/verifiers",
            description=licensed("Loads ImageBind (Huge, or any checkpoint in its layout) from "
                                 "models/imagebind/ for JavisScore, AVHScore and the ImageBind "
                                 "similarities.", "imagebind"),
            inputs=[
                io.Combo.Input("ckpt_name", options=file_choices(FOLDER, DEFAULT), default=DEFAULT,
                               tooltip=f"A file in models/imagebind/; the official one is "
                                       f"{DEFAULT} from {PUBLISHED}."),
                dtype_input(),
            ],
            outputs=[ImageBind.Output(display_name="imagebind")],
        )

    @classmethod
    def fingerprint_inputs(cls, ckpt_name, dtype):
        return file_state(FOLDER, ckpt_name)  # a file replaced or removed on disk loads anew

    @classmethod
    def validate_inputs(cls, ckpt_name):
        return missing([_need(ckpt_name)])

    @classmethod
    def execute(cls, ckpt_name, dtype) -> io.NodeOutput:
        path = find(_need(ckpt_name))
        model = load_imagebind(path, comfy.model_management.unet_offload_device(), dtype_for(dtype))
        return io.NodeOutput(model)


def _imagebind_input():
    return ImageBind.Input("imagebind", tooltip="From AVITS ImageBind Loader; verifiers on one "
                                                "loader share its embeddings.")


class JavisScoreNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_JavisScore", display_name="AVITS JavisScore", category="AVITS/verifiers",
            description=licensed("Audio-video synchrony (JavisScore): in 2 s windows every 0.5 s, how well "
                                 "the worst-matching 40 % of frames agree with the window's sound. The "
                                 "paper pairs it with VideoReward-TA.", "imagebind"),
            inputs=[_imagebind_input(),
                    io.String.Input("name", default="javisscore", advanced=True, tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, imagebind, name) -> io.NodeOutput:
        return io.NodeOutput([JavisScore(imagebind, name)])


class AVHScoreNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_AVHScore", display_name="AVITS AVHScore", category="AVITS/verifiers",
            description=licensed("Audio-visual harmony: the mean ImageBind similarity of every frame to "
                                 "the clip's sound.", "imagebind"),
            inputs=[_imagebind_input(),
                    io.String.Input("name", default="avhscore", advanced=True, tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, imagebind, name) -> io.NodeOutput:
        return io.NodeOutput([AVHScore(imagebind, name)])


METRIC_CHOICES = {"tv, ta, av": ("tv", "ta", "av"), "tv": ("tv",), "ta": ("ta",), "av": ("av",)}


class ImageBindScoreNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ImageBindScore", display_name="AVITS ImageBind Score",
            category="AVITS/verifiers",
            description=licensed("ImageBind cosine similarities: text-video (tv_ib), text-audio (ta_ib), "
                                 "audio-video (av_ib); each chosen one is a reward of its own.", "imagebind"),
            inputs=[_imagebind_input(),
                    io.Combo.Input("metrics", options=list(METRIC_CHOICES), default="tv, ta, av",
                                   tooltip="Which similarities to give as rewards."),
                    io.String.Input("name", default="imagebind", advanced=True,
                                    tooltip="The verifier's name; its rewards are tv_ib, ta_ib, av_ib.")],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, imagebind, metrics, name) -> io.NodeOutput:
        return io.NodeOutput([ImageBindScore(imagebind, METRIC_CHOICES[metrics], name)])


NODES = [ImageBindLoaderNode, JavisScoreNode, AVHScoreNode, ImageBindScoreNode]
