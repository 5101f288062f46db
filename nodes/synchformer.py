"""Synchformer nodes: the loader (``synchformer_state_dict.pth`` from models/synchformer/) and
the DeSync verifier of av-benchmark on it."""

from __future__ import annotations

import comfy.model_management
import folder_paths
from comfy_api.latest import io

from ..verifiers.synchformer import FILE, OUTPUTS, PUBLISHED, SHORT_CLIPS, DeSync, load_synchformer
from . import types
from .models import DTYPES, Need, dtype_for, file_choices, file_state, find, missing, register_folder
from .verifiers import NAME_TOOLTIP
from .licences import licensed

FOLDER = "synchformer"
register_folder(FOLDER, folder_paths.supported_pt_extensions)

SynchformerModel = io.Custom("AVITS_SYNCHFORMER")
OUTPUT_CHOICES = {"desync": ("desync",), "desync, sync_prob": OUTPUTS}


def _need(ckpt_name: str) -> Need:
    return Need(FOLDER, ckpt_name, "Synchformer checkpoint", PUBLISHED)


class SynchformerLoaderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_SynchformerLoader", display_name="AVITS Synchformer Loader",
            category="AVITS/verifiers",
            description=licensed("Loads Synchformer (the whole model: video and audio extractors "
                                 "and the offset classifier) from models/synchformer/ for DeSync.",
                                 "synchformer"),
            inputs=[
                io.Combo.Input("ckpt_name", options=file_choices(FOLDER, FILE), default=FILE,
                               tooltip=f"A file in models/synchformer/; the official one is {FILE} "
                                       f"from {PUBLISHED} (the one MMAudio and av-benchmark use)."),
                io.Combo.Input("dtype", options=list(DTYPES), default="fp32", advanced=True,
                               tooltip="fp32 is how the benchmark computes DeSync; auto, fp16 and "
                                       "bf16 save memory but can flip an argmax near a tie."),
            ],
            outputs=[SynchformerModel.Output(display_name="synchformer")],
        )

    @classmethod
    def fingerprint_inputs(cls, ckpt_name, dtype):
        return file_state(FOLDER, ckpt_name)

    @classmethod
    def validate_inputs(cls, ckpt_name):
        return missing([_need(ckpt_name)])

    @classmethod
    def execute(cls, ckpt_name, dtype) -> io.NodeOutput:
        path = find(_need(ckpt_name))
        return io.NodeOutput(load_synchformer(path, comfy.model_management.unet_offload_device(),
                                              dtype_for(dtype)))


class DeSyncNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_DeSync", display_name="AVITS DeSync", category="AVITS/verifiers",
            description=licensed("Audio-video sync as av-benchmark's DeSync: Synchformer's "
                                 "predicted offset (-2..2 s in 0.2 s steps) of the first and the "
                                 "last 4.8 s of each clip, |offset| averaged. The reward is -DeSync "
                                 "in seconds, so higher is better (0 = in sync). Clips need 4.8 s "
                                 "at least.", "synchformer"),
            inputs=[SynchformerModel.Input("synchformer", tooltip="From AVITS Synchformer Loader."),
                    io.Combo.Input("outputs", options=list(OUTPUT_CHOICES), default="desync",
                                   tooltip="desync: the reward <name> = -DeSync in seconds. sync_prob "
                                           "adds <name>_sync_prob, the probability of the 0 s offset "
                                           "averaged over the two windows (higher is better)."),
                    io.Combo.Input("short_clips", options=list(SHORT_CLIPS), default="error",
                                   tooltip="A clip under 4.8 s: error (the benchmark scores none), or "
                                           "pad it to 4.8 s with its last frame and silence and "
                                           "score that one window (not the benchmark's number)."),
                    io.String.Input("name", default="desync", advanced=True, tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, synchformer, outputs, short_clips, name) -> io.NodeOutput:
        return io.NodeOutput([DeSync(synchformer, OUTPUT_CHOICES[outputs], name, short_clips)])


NODES = [SynchformerLoaderNode, DeSyncNode]
