"""Search nodes: naive sampling, Best-of-N and EvoSearch. Each drives one progress bar over the
whole search, stops on an interrupt between steps, previews the current best clip, and returns
the winner's frames, audio, latent and report (also saved beside an mp4 in the output folder)."""

from __future__ import annotations

import json

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ..search.result import SearchResult
from ..search.strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch, naive
from ..verifiers.batch import AVBatch
from . import types
from .aggregation import AggregatorChoice
from .report import save_result

PREVIEW_FRAMES = 6


def _progress(node_id: str | None):
    """One ComfyUI progress bar over the whole search; checks for an interrupt at every update
    (the bar itself throttles what it sends, so the check is explicit)."""
    bar = comfy.utils.ProgressBar(1, node_id=node_id)

    def update(done: int, total: int, preview: AVBatch | None) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        image = None
        if preview is not None:
            from PIL import Image
            frame = preview.video[0, preview.video.shape[1] // 2]
            image = ("JPEG", Image.fromarray((frame.clamp(0, 1) * 255).byte().cpu().numpy()), 512)
        bar.update_absolute(done, total, image)

    return update


def _outputs(cls, result: SearchResult, filename_prefix: str) -> io.NodeOutput:
    av = result.best_av
    frames = av.video[0]
    audio = {"waveform": av.audio[:1].float().cpu(), "sample_rate": av.sample_rate}
    state = result.best.state
    latent = {"samples": state.unsqueeze(0) if isinstance(state, torch.Tensor) else state}
    report = save_result(result, filename_prefix)
    pick = torch.linspace(0, frames.shape[0] - 1, min(PREVIEW_FRAMES, frames.shape[0])).long()
    preview = {**ui.PreviewImage(frames[pick], cls=cls).as_dict(),
               **ui.PreviewAudio(audio, cls=cls).as_dict(),
               "avits_report": [json.dumps(report)]}
    return io.NodeOutput(frames, audio, latent, report, ui=preview)


COMMON_INPUTS = [
    types.Generator.Input("generator", tooltip="What makes candidates: AVITS ToyAV Generator, or "
                                               "a wrapped ComfyUI audio-video model."),
    types.Verifiers.Input("verifiers", tooltip="The reward models that score each candidate "
                                               "(combine several with AVITS Verifier Set)."),
    types.Aggregator.Input("aggregator", tooltip="How the rewards become one score: AVITS ARW "
                                                 "State (adaptive) or AVITS Aggregator (fixed)."),
    io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True,
                 tooltip="Base seed: candidate i of the first generation uses seed + i."),
]
PREFIX_INPUT = io.String.Input("filename_prefix", default="AVITS/search", advanced=True,
                               tooltip="Where the winner's mp4, report.json and plot.png go, "
                                       "under the output folder.")
COMMON_OUTPUTS = [io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                  io.Latent.Output(display_name="latent"), types.Report.Output(display_name="report")]


class NaiveSampleNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_NaiveSample", display_name="AVITS Naive Sample",
            category="AVITS/search",
            description="One sample, scored by the verifiers: the baseline a search improves on.",
            inputs=[*COMMON_INPUTS, PREFIX_INPUT], outputs=COMMON_OUTPUTS,
            is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed,
                filename_prefix) -> io.NodeOutput:
        result = naive(generator, verifiers, aggregator.aggregator(), seed,
                      _progress(cls.hidden.unique_id), aggregator.after_observe())
        return _outputs(cls, result, filename_prefix)


class BestOfNNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_BestOfN", display_name="AVITS Best-of-N",
            category="AVITS/search",
            description="Samples N candidates from N seeds in one batch, scores each with every "
                        "verifier, combines the rewards and returns the best.",
            inputs=[*COMMON_INPUTS,
                    io.Int.Input("n", default=10, min=0, max=1024,
                                 tooltip="Number of candidates (the reference uses 10 for LTX-2)."),
                    PREFIX_INPUT],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n,
                filename_prefix) -> io.NodeOutput:
        result = best_of_n(generator, verifiers, aggregator.aggregator(),
                      BestOfNConfig(n, seed), _progress(cls.hidden.unique_id),
                      aggregator.after_observe())
        return _outputs(cls, result, filename_prefix)


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, got '{text}'") from None


class EvoSearchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_EvoSearch", display_name="AVITS EvoSearch",
            category="AVITS/search",
            description="Evolves the initial noise and intermediate states: at each evolution "
                        "step it keeps the elites of everything seen there and mutates "
                        "tournament winners. Unmutated elites are never denoised again.",
            inputs=[*COMMON_INPUTS,
                    io.String.Input("evolution_steps", default="0, 10",
                                    tooltip="Sampling steps at which the population evolves "
                                            "(0 = the initial noise)."),
                    io.String.Input("population_sizes", default="5, 5, 5",
                                    tooltip="First generation, then one size per evolution step."),
                    io.Int.Input("elites", default=2, min=0, max=1024,
                                 tooltip="Best states carried over unchanged at each evolution step."),
                    io.Float.Input("mutation_rate", default=0.2, min=0.001, max=1.0, step=0.01,
                                   advanced=True, tooltip="beta: initial noise becomes "
                                   "sqrt(1 - beta^2) x + beta eps."),
                    io.Float.Input("tournament_ratio", default=0.5, min=0.01, max=1.0, step=0.05,
                                   advanced=True, tooltip="Each parent is the best of "
                                   "int(pool size x ratio) states drawn at random."),
                    io.Combo.Input("mutation", options=["reference", "variance_preserving"],
                                   default="reference", advanced=True,
                                   tooltip="Intermediate states: 'reference' adds sigma * eps; "
                                           "'variance_preserving' mixes sqrt(1 - beta^2) x + "
                                           "beta sigma eps."),
                    PREFIX_INPUT],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, evolution_steps,
                population_sizes, elites, mutation_rate, tournament_ratio, mutation,
                filename_prefix) -> io.NodeOutput:
        config = EvoSearchConfig(_int_list(evolution_steps, "evolution steps"),
                                 _int_list(population_sizes, "population sizes"), elites,
                                 mutation_rate, tournament_ratio, mutation, seed)
        result = evosearch(generator, verifiers, aggregator.aggregator(), config,
                      _progress(cls.hidden.unique_id), aggregator.after_observe())
        return _outputs(cls, result, filename_prefix)


NODES = [NaiveSampleNode, BestOfNNode, EvoSearchNode]
