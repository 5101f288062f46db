"""Verifier nodes. Every verifier node outputs a one-element AVITS_VERIFIERS list, so it plugs
straight into a search; AVITS Verifier Set joins several."""

from __future__ import annotations

from comfy_api.latest import io

from ..generators.toyav import ToyTextMatch
from ..verifiers.av_align import AVAlign
from . import types
from .licences import licensed

MAX_VERIFIERS = 16
NAME_TOOLTIP = "The key of this verifier's reward in reports and in the ARW history."


class AVAlignNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_AVAlign", display_name="AVITS AV-Align", category="AVITS/verifiers",
            description=licensed("Audio-video synchrony without weights: IoU of audio onsets and optical "
                                 "flow peaks (within one frame).", "none"),
            inputs=[io.String.Input("name", default="av_align", advanced=True, tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        return io.NodeOutput([AVAlign(name)])


class ToyTextMatchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ToyTextMatch", display_name="AVITS ToyAV Text Match",
            category="AVITS/verifiers",
            description=licensed("Text alignment for the ToyAV world, read off the pixels and the sound: "
                                 "does the clip show the prompt's color and shape and play its sound?", "none"),
            inputs=[io.String.Input("name", default="toy_text_match", advanced=True,
                                    tooltip=NAME_TOOLTIP)],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        return io.NodeOutput([ToyTextMatch(name)])


class VerifierSetNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        slot = io.Autogrow.TemplatePrefix(
            types.Verifiers.Input("verifier", tooltip="Verifiers to add to the set (each scores "
                                                      "every candidate); a new slot appears when "
                                                      "this one is connected."),
            prefix="verifier", min=1, max=MAX_VERIFIERS)
        return io.Schema(
            node_id="AVITS_VerifierSet", display_name="AVITS Verifier Set",
            category="AVITS/verifiers",
            description="Joins verifiers into one set. The study behind this pack found one "
                        "text-video plus one audio-video sync verifier balanced; one alone gets "
                        "hacked.",
            inputs=[io.Autogrow.Input("verifiers", template=slot,
                                      tooltip="Connect verifiers; the set grows as you do.")],
            outputs=[types.Verifiers.Output(display_name="verifiers")],
        )

    @classmethod
    def execute(cls, verifiers: io.Autogrow.Type) -> io.NodeOutput:
        joined = [v for group in verifiers.values() if group for v in group]
        names = [v.name for v in joined]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"verifier name(s) {duplicates} used twice; rename one (the 'name' "
                             "option of the verifier node)")
        return io.NodeOutput(joined)


NODES = [AVAlignNode, ToyTextMatchNode, VerifierSetNode]
