"""AVITS_ScoreAV: the verifiers' numbers for any frames and audio (a loaded video, another
pack's output), not only for candidates of a search: the paper's metrics for any clip. A real
file's audio may last longer or shorter than its picture: each verifier reads the two streams
as its benchmark reads such a file, and the outputs say what each one used."""

from __future__ import annotations

import json

from comfy_api.latest import io, ui

from ..core import verifier as verifier_api
from ..core.batch import AVBatch
from ..core.checks import finite
from ..core.lengths import lengths_used
from ..search.aggregation import check_rewards
from . import types
from .residency import place


LENGTHS = "lengths"
"""The scores_json key, present only when audio and frames last differently, that says what each
verifier used of the two streams."""


class ScoreAVNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ScoreAV", display_name="AVITS Score AV", category="AVITS/evaluation",
            description="Scores frames + audio + prompt with a verifier set (e.g. LoadVideo -> "
                        "Get Video Components -> here) and shows the rewards as a table. Audio "
                        "longer or shorter than the frames is scored as each verifier's benchmark "
                        "reads such a file (JavisScore: the windows both streams have; ImageBind, "
                        "AVHScore, AV-Align: each stream whole; DeSync: both cut to the shorter), "
                        "and the outputs say what each verifier used.",
            inputs=[
                io.Image.Input("images", tooltip="The clip's frames (a batch of images)."),
                io.Audio.Input("audio", tooltip="The clip's sound; the first waveform of the batch. "
                               "It may last longer or shorter than the frames."),
                io.Float.Input("fps", default=24.0, min=0.1, max=240.0, step=0.01,
                               tooltip="Frames per second of the images."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="The text the clip should show (for text verifiers)."),
                types.Verifiers.Input("verifiers", tooltip="The verifiers to score with."),
            ],
            outputs=[io.String.Output(display_name="scores_json",
                                      tooltip=f"{{reward: value}}; when audio and frames last "
                                              f"differently, also '{LENGTHS}': both durations and "
                                              "what each verifier used of them."),
                     io.String.Output(display_name="table",
                                      tooltip="One 'reward  value' line each; when the lengths "
                                              "differ, then what each verifier used.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, audio, fps, prompt, verifiers) -> io.NodeOutput:
        fps = finite("fps", fps, 0, 240, lo_open=True)
        waveform = audio["waveform"]
        batch = AVBatch.media(images[None], fps, waveform[:1].float(), int(audio["sample_rate"]))
        verifier_api.check_set(verifiers)
        modules = [m for v in verifiers for m in verifier_api.models(v)]
        if modules:
            place("verify", modules)
        scores: dict = {k: float(t[0]) for k, t in
                        check_rewards(verifier_api.score(verifiers, batch, [prompt])).items()}
        width = max(len(k) for k in scores)
        table = "\n".join(f"{k.ljust(width)}  {v: .6f}" for k, v in scores.items())
        used = {name: said[0] for name, said in lengths_used(verifiers, batch).items()}
        if used:
            if LENGTHS in scores:
                raise ValueError(f"a reward is named '{LENGTHS}', the key that says what each "
                                 "verifier used of audio and video of different lengths; rename it")
            scores[LENGTHS] = {"audio_seconds": batch.audio_seconds,
                               "video_seconds": batch.video_seconds, "verifiers": used}
            table += f"\n\n{batch.lengths()}:\n" + "\n".join(f"{k}: {v}" for k, v in used.items())
        text = json.dumps(scores, allow_nan=False)
        return io.NodeOutput(text, table, ui=ui.PreviewText(table))


NODES = [ScoreAVNode]
