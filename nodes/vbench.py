"""AVITS VBench Quality: VBench's quality dimensions as verifiers on the weights in
models/vbench/, checked when queued; its output scores any clip (AVITS Score AV) or joins a
search's verifier set."""

from __future__ import annotations

import os

import comfy.model_management
import folder_paths
from comfy_api.latest import io

from ..verifiers import vbench
from . import types
from .licences import licensed
from .models import DTYPES, Need, dtype_for, file_state, find, missing, register_folder

FOLDER = "vbench"
register_folder(FOLDER, folder_paths.supported_pt_extensions)

MEASURES = {
    "subject_consistency": "how alike the frames' subjects stay: DINO ViT-B/16 features of each "
                           "frame against the first and the previous frame (0..1)",
    "background_consistency": "how alike the frames' backgrounds stay: CLIP ViT-B/32 image "
                              "features of each frame against the first and the previous (0..1)",
    "aesthetic_quality": "LAION's aesthetic rating of each frame (a linear head on CLIP ViT-L/14 "
                         "features) divided by 10, averaged over the frames",
    "imaging_quality": "distortion (noise, blur, over-exposure): MUSIQ trained on SPAQ on each "
                       "frame, divided by 100, averaged",
    "motion_smoothness": "how well AMT-S interpolates the dropped odd frames from their "
                         "neighbours: smooth motion scores near 1",
}


def _needs(names: list[str]) -> list[Need]:
    return [Need(FOLDER, file, f"VBench {name} file", source)
            for name in names for file, source in vbench.DIMENSIONS[name].FILES]


def _chosen(flags: dict[str, bool]) -> list[str]:
    return [name for name in vbench.DIMENSIONS if flags.get(name)]


def _tooltip(name: str) -> str:
    module = vbench.DIMENSIONS[name]
    files = ", ".join(file for file, _ in module.FILES)
    return (f"VBench's {name}: {MEASURES.get(name, name)}. Higher is better. Needs {files} in "
            f"models/vbench/.")


def _folder(needs: list[Need]) -> str:
    """The models/vbench/ folder that holds every file (a dimension reads one folder)."""
    for base in folder_paths.get_folder_paths(FOLDER):
        if all(os.path.isfile(os.path.join(base, n.name)) for n in needs):
            return base
    paths = [str(find(n)) for n in needs]  # each exists (checked when queued) or is named here
    raise FileNotFoundError(f"the VBench files are split over several folders ({', '.join(paths)}); "
                            "keep them all in one models/vbench/ folder")


class VBenchQualityNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_VBenchQuality", display_name="AVITS VBench Quality",
            category="AVITS/verifiers",
            description=licensed("VBench's quality dimensions of each clip, as VBench computes "
                                 "them on 8-bit frames: one reward per dimension switched on, "
                                 "named after it, higher is better. Weights go in models/vbench/ "
                                 "(each input's tooltip names its files).", "vbench"),
            inputs=[*(io.Boolean.Input(name, default=True, tooltip=_tooltip(name))
                      for name in vbench.DIMENSIONS),
                    io.Combo.Input("dtype", options=list(DTYPES), default="fp32", advanced=True,
                                   tooltip="fp32 is how VBench runs DINO, LAION's head, MUSIQ and "
                                           "AMT; VBench runs the OpenAI CLIPs in fp16 on a GPU "
                                           "(fp16 rounding; fp16 here comes closer to that). auto, fp16 and "
                                           "bf16 apply to every model and save memory.")],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def fingerprint_inputs(cls, dtype, **flags):
        return "|".join(file_state(FOLDER, n.name) for n in _needs(_chosen(flags)))

    @classmethod
    def validate_inputs(cls, dtype, **flags):
        if dtype not in DTYPES:
            return f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}"
        if not _chosen(flags):
            return "switch on at least one VBench dimension"
        return missing(_needs(_chosen(flags)))

    @classmethod
    def execute(cls, dtype, **flags) -> io.NodeOutput:
        names = _chosen(flags)
        if not names:
            raise ValueError("switch on at least one VBench dimension")
        folder = _folder(_needs(names))
        return io.NodeOutput(vbench.load(names, folder, comfy.model_management.unet_offload_device(),
                                         dtype_for(dtype)))


NODES = [VBenchQualityNode]
