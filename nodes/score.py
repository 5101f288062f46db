"""AVITS_ScoreAV: the verifiers' numbers for any frames and audio (a loaded video, another
pack's output), not only for candidates of a search: the paper's metrics for any clip."""

from __future__ import annotations

import json

from comfy_api.latest import io, ui

from ..core import verifier as verifier_api
from ..core.batch import AVBatch
from ..core.checks import finite
from ..search.aggregation import check_rewards
from . import types
from .residency import place


class ScoreAVNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ScoreAV", display_name="AVITS Score AV", category="AVITS/evaluation",
            description="Scores frames + audio + prompt with a verifier set (e.g. LoadVideo -> "
                        "Get Video Components -> here) and shows the rewards as a table.",
            inputs=[
                io.Image.Input("images", tooltip="The clip's frames (a batch of images)."),
                io.Audio.Input("audio", tooltip="The clip's sound; the first waveform of the batch."),
                io.Float.Input("fps", default=24.0, min=0.1, max=240.0, step=0.01,
                               tooltip="Frames per second of the images."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="The text the clip should show (for text verifiers)."),
                types.Verifiers.Input("verifiers", tooltip="The verifiers to score with."),
            ],
            outputs=[io.String.Output(display_name="scores_json"), io.String.Output(display_name="table")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, audio, fps, prompt, verifiers) -> io.NodeOutput:
        fps = finite("fps", fps, 0, 240, lo_open=True)
        waveform = audio["waveform"]
        batch = AVBatch(images[None], fps, waveform[:1].float(), int(audio["sample_rate"]))
        verifier_api.check_set(verifiers)
        modules = [m for v in verifiers for m in verifier_api.models(v)]
        if modules:
            place("verify", modules)
        scores = {k: float(t[0]) for k, t in
                  check_rewards(verifier_api.score(verifiers, batch, [prompt])).items()}
        width = max(len(k) for k in scores)
        table = "\n".join(f"{k.ljust(width)}  {v: .6f}" for k, v in scores.items())
        text = json.dumps(scores, allow_nan=False)
        return io.NodeOutput(text, table, ui=ui.PreviewText(table))


NODES = [ScoreAVNode]
