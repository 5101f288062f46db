"""Generator nodes: what a search node samples candidates from."""

from __future__ import annotations

from comfy_api.latest import io

from ..generators.toyav import WORLDS, ToyAVGenerator
from . import types
from .licences import licensed


class ToyAVGeneratorNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ToyAVGenerator",
            display_name="AVITS ToyAV Generator",
            category="AVITS/generators",
            description=licensed("A tiny procedural audio-video world (a coloured object bouncing, a "
                                 "sound at each impact) with a real flow-matching sampler and no weights. "
                                 "Its naive samples miss the prompt and drift out of sync, which search "
                                 "can fix: use it to try the nodes on any machine.", "none"),
            inputs=[
                io.String.Input("prompt", multiline=True, default="a red ball bouncing, bell sound",
                                tooltip="Name a color (red, green, blue, yellow), a shape (ball, "
                                        "cube, pyramid) and a sound (bell, drum, whistle)."),
                io.Int.Input("steps", default=30, min=1, max=1000,
                             tooltip="Sampling steps from noise to sample."),
                io.Float.Input("guidance", default=3.0, min=0.0, max=30.0, step=0.1,
                               tooltip="Classifier-free guidance scale."),
                io.Float.Input("coupling", default=0.28, min=0.0, max=1.0, step=0.01,
                               advanced=True, tooltip="How much the audio and video parts see "
                               "each other while denoising (1 = the exact joint model, always in "
                               "sync; 0 = independent)."),
                io.Float.Input("caption_noise", default=0.5, min=0.01, max=1.0, step=0.01,
                               advanced=True, tooltip="How often the toy dataset's captions are "
                               "wrong (1 = captions carry no information)."),
                io.Int.Input("width", default=64, min=16, max=256, step=8, advanced=True,
                             tooltip="Frame width in pixels."),
                io.Int.Input("height", default=64, min=16, max=256, step=8, advanced=True,
                             tooltip="Frame height in pixels."),
                io.Float.Input("fps", default=24.0, min=1.0, max=60.0, step=1.0, advanced=True,
                               tooltip="Frames per second."),
                io.Float.Input("duration", default=2.0, min=0.5, max=10.0, step=0.5, advanced=True,
                               tooltip="Clip length in seconds."),
                io.Combo.Input("world", options=list(WORLDS), default=WORLDS[0],
                               optional=True,
                               tooltip="discrete: only color, shape and sound, so a nearby noise "
                                       "gives the same sample or a different one. continuous: "
                                       "also size (small/large), brightness (dark/bright), "
                                       "bounce height (low/high), loudness (quiet/loud) and pitch "
                                       "(low-pitched/high-pitched), which vary smoothly with the "
                                       "noise, e.g. 'a large bright red ball bouncing high, loud "
                                       "high-pitched bell sound'."),
            ],
            outputs=[types.Generator.Output(display_name="generator")],
        )

    @classmethod
    def execute(cls, prompt, steps, guidance, coupling, caption_noise, width, height, fps,
                duration, world="discrete") -> io.NodeOutput:
        return io.NodeOutput(ToyAVGenerator(prompt, steps=steps, guidance=guidance,
                                            coupling=coupling, caption_noise=caption_noise,
                                            width=width, height=height, fps=fps, duration=duration,
                                            world=world))


NODES = [ToyAVGeneratorNode]
