"""Making one candidate of an earlier search again from its recipe: the report (and the search
node's table) gives every candidate's recipe, its seed and each mutation or new rollout on its
way, so an EvoSearch winner of a late generation is re-run without re-running the search."""

from __future__ import annotations

from comfy_api.latest import io

from ..core import verifier as verifier_api
from ..search.recipe import Recipe, replay
from . import types
from .residency import place


class ReplayCandidateNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ReplayCandidate", display_name="AVITS Replay Candidate",
            category="AVITS/search",
            description="Makes one candidate of an earlier search again, bit for bit, from the "
                        "recipe its report gives, with the same generator (same model, prompt, "
                        "steps and sampler).",
            inputs=[
                types.Generator.Input("generator", tooltip="The generator the search ran with, "
                                                           "its settings unchanged."),
                io.String.Input("recipe", default="0",
                                tooltip="The candidate's recipe from the search's report or its "
                                        "node's table: '12' (seed 12) or e.g. '12; 10 mutate 17 "
                                        "0.2 reference' (seed 12, mutated at step 10 with "
                                        "noise seed 17, rate 0.2)."),
            ],
            outputs=[io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                     io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def validate_inputs(cls, recipe):
        try:
            Recipe.parse(recipe)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, generator, recipe) -> io.NodeOutput:
        modules = verifier_api.models(generator)
        if modules:
            place("generate", modules)
        state = replay(generator, Recipe.parse(recipe))
        av = generator.decode([state])
        audio = {"waveform": av.audio[:1].float().cpu(), "sample_rate": av.sample_rate}
        return io.NodeOutput(av.video[0], audio, generator.to_latent([state]))


NODES = [ReplayCandidateNode]
