"""Search nodes: naive sampling, Best-of-N and EvoSearch. Each checks its plan against the
resource limits before any work, drives one progress bar over the whole search, stops on an
interrupt between steps and chunks, previews the current best clip, and returns the winner's
frames, audio, latent and report (also saved beside an mp4 in the output folder)."""

from __future__ import annotations

import json
import tomllib

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ..core.batch import AVBatch
from ..search import methods
from ..search.engine import SearchLimits
from ..search.pruning import ParticleConfig, PrunedBestOfNConfig, particle_search, pruned_best_of_n
from ..search.result import SearchResult
from ..search.strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch, naive
from . import types
from ..core.generator import MUTATIONS
from .aggregation import AggregatorChoice
from .parsing import parse_ints, parse_schedule, parse_steps
from .report import save_result
from .residency import place

PREVIEW_FRAMES = 6
BON, EVO, PRUNED, PARTICLES = BestOfNConfig(), EvoSearchConfig(), PrunedBestOfNConfig(), ParticleConfig()
"""The defaults the nodes show: the configs' own (search.methods holds the one copy)."""


def _text(values) -> str:
    """(0, 0.33) -> '0, 0.33'; ((0.2, 0.5), ...) -> '0.2:0.5, ...': a config default as node text."""
    return ", ".join(":".join(f"{x:g}" for x in v) if isinstance(v, tuple) else f"{v:g}" for v in values)


PRUNING_DEFAULT = _text(PRUNED.schedule)
PRUNING_NOTE = "Measured on the continuous ToyAV: see docs/claims.md."


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
    report = save_result(result, filename_prefix)
    pick = torch.linspace(0, frames.shape[0] - 1, min(PREVIEW_FRAMES, frames.shape[0])).long()
    preview = {**ui.PreviewImage(frames[pick], cls=cls).as_dict(),
               **ui.PreviewAudio(audio, cls=cls).as_dict(),
               "avits_report": [json.dumps(report, allow_nan=False)]}
    return io.NodeOutput(frames, audio, result.best_latent, report, ui=preview)


def _options(cls, aggregator: AggregatorChoice, prompt: str, chunk_size: int,
             max_candidates: int) -> dict:
    """What every search takes from its node: the prompt text, the budget and the hooks."""
    return {"prompt": prompt.strip() or None,
            "limits": SearchLimits(chunk_size=chunk_size, max_candidates=max_candidates),
            "on_progress": _progress(cls.hidden.unique_id), "place": place,
            **aggregator.search_options()}


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
TAIL_INPUTS = [
    io.String.Input("filename_prefix", default="AVITS/search", advanced=True,
                    tooltip="Where the winner's mp4, report.json and plot.png go, under the "
                            "output folder."),
    io.String.Input("prompt", default="", multiline=True, optional=True,
                    tooltip="The text the verifiers score against. Empty: the generator's "
                            "prompt (a ComfyUI CONDITIONING carries no text, so give it here "
                            "for a wrapped model)."),
    io.Int.Input("chunk_size", default=8, min=1, max=4096, optional=True, advanced=True,
                 tooltip="Candidates denoised, decoded and verified at once; lower it when "
                         "memory runs short (the results do not change)."),
    io.Int.Input("max_candidates", default=1024, min=1, max=1_000_000, optional=True,
                 advanced=True, tooltip="The most candidates one search may score; a larger "
                                        "plan is refused before any work."),
]
COMMON_OUTPUTS = [io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                  io.Latent.Output(display_name="latent"), types.Report.Output(display_name="report")]


class NaiveSampleNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_NaiveSample", display_name="AVITS Naive Sample",
            category="AVITS/search",
            description="One sample, scored by the verifiers: the baseline a search improves on.",
            inputs=[*COMMON_INPUTS, *TAIL_INPUTS], outputs=COMMON_OUTPUTS,
            is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, filename_prefix,
                prompt="", chunk_size=8, max_candidates=1024) -> io.NodeOutput:
        result = naive(generator, verifiers, aggregator.aggregator(), seed,
                       **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


class BestOfNNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_BestOfN", display_name="AVITS Best-of-N",
            category="AVITS/search",
            description="Samples N candidates from N seeds, scores each with every verifier, "
                        "combines the rewards and returns the best.",
            inputs=[*COMMON_INPUTS,
                    io.Int.Input("n", default=BON.n, min=0, max=1024,
                                 tooltip="Number of candidates (the reference uses 10 for LTX-2)."),
                    *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, filename_prefix,
                prompt="", chunk_size=8, max_candidates=1024) -> io.NodeOutput:
        result = best_of_n(generator, verifiers, aggregator.aggregator(), BestOfNConfig(n, seed),
                           **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


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
                    io.String.Input("evolution_steps", default=_text(EVO.evolution_steps),
                                    tooltip="Sampling steps at which the population evolves "
                                            "(0 = the initial noise); a number between 0 and 1 "
                                            "is that fraction of the schedule (0.33 of 30 "
                                            "steps = step 10; of 8 = step 3)."),
                    io.String.Input("population_sizes", default=_text(EVO.population_sizes),
                                    tooltip="First generation, then one size per evolution "
                                            "step; the new candidates of all of them together "
                                            "are at most max_candidates."),
                    io.Int.Input("elites", default=EVO.elites, min=0, max=1024,
                                 tooltip="Best states carried over unchanged at each evolution step."),
                    io.Float.Input("mutation_rate", default=EVO.mutation_rate, min=0.001, max=1.0, step=0.01,
                                   advanced=True, tooltip="beta: initial noise becomes "
                                   "sqrt(1 - beta^2) x + beta eps."),
                    io.Float.Input("tournament_ratio", default=EVO.tournament_ratio, min=0.01, max=1.0, step=0.05,
                                   advanced=True, tooltip="Each parent is the best of "
                                   "int(pool size x ratio) states drawn at random."),
                    io.Combo.Input("mutation", options=list(MUTATIONS),
                                   default=EVO.mutation, advanced=True,
                                   tooltip="Intermediate states: 'reference' adds t * eps with "
                                           "t = 1 - step/steps, the raw timestep (as the "
                                           "reference); 'variance_preserving' mixes "
                                           "sqrt(1 - beta^2) x + beta sigma eps."),
                    *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, evolution_steps,
                population_sizes, elites, mutation_rate, tournament_ratio, mutation,
                filename_prefix, prompt="", chunk_size=8, max_candidates=1024) -> io.NodeOutput:
        config = EvoSearchConfig(parse_steps(evolution_steps, "evolution steps"),
                                 parse_ints(population_sizes, "population sizes"), elites,
                                 mutation_rate, tournament_ratio, mutation, seed)
        result = evosearch(generator, verifiers, aggregator.aggregator(), config,
                           **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


PROXY_INPUT = types.Verifiers.Input(
    "proxy_verifiers", optional=True,
    tooltip="Optional cheaper verifiers for the intermediate scores (ranked by average ranks); "
            "without them the final verifiers read the x0 predictions, ranked with the "
            "aggregator's current scales. Intermediate scores never enter ARW's history.")


class PrunedBestOfNNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_PrunedBestOfN", display_name="AVITS Pruned Best-of-N",
            category="AVITS/search",
            description="Best-of-N that stops losing candidates early: at each pruning step the "
                        "survivors' predicted clean samples are scored and only the best go on. "
                        "Survivors finish exactly as in Best-of-N; the compute saved is in the "
                        "report.",
            inputs=[*COMMON_INPUTS,
                    io.Int.Input("n", default=PRUNED.n, min=1, max=1024, tooltip="Candidates started."),
                    io.String.Input("schedule", default=PRUNING_DEFAULT,
                                    tooltip="step:fraction kept, e.g. '6:0.5, 12:0.5' (at step "
                                            "6 keep half, at step 12 half of those); a step "
                                            "between 0 and 1 is that fraction of the schedule, "
                                            "so the default (steps 6 and 10 of 30, 2 and 3 of "
                                            "8) fits any step count. " + PRUNING_NOTE +
                                            " Empty: Best-of-N."),
                    PROXY_INPUT, *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, schedule,
                filename_prefix, proxy_verifiers=None, prompt="", chunk_size=8,
                max_candidates=1024) -> io.NodeOutput:
        config = PrunedBestOfNConfig(n, parse_schedule(schedule), seed)
        result = pruned_best_of_n(generator, verifiers, aggregator.aggregator(), config,
                                  proxy=proxy_verifiers,
                                  **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


class ParticleSearchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ParticleSearch", display_name="AVITS Particle Search",
            category="AVITS/search",
            description="N particles; at each resampling step their predicted clean samples are "
                        "scored and the particles resampled by softmax(score / temperature), "
                        "copies diverging by fresh noise; the best finished particle wins.",
            inputs=[*COMMON_INPUTS,
                    io.Int.Input("n", default=PARTICLES.n, min=1, max=1024, tooltip="Particles."),
                    io.String.Input("resample_steps", default=_text(PARTICLES.resample_steps),
                                    tooltip="Steps at which the particles are resampled, or "
                                            "fractions of the schedule (0.33, 0.67: steps 10 "
                                            "and 20 of 30); empty: Best-of-N."),
                    io.Float.Input("temperature", default=PARTICLES.temperature, min=0.0001, max=1000.0, step=0.01,
                                   tooltip="Softmax temperature of the scores: low keeps only "
                                           "the best, high resamples almost uniformly."),
                    io.Float.Input("jitter", default=PARTICLES.jitter, min=0.001, max=1.0, step=0.01,
                                   advanced=True, tooltip="How far a copy moves from the "
                                   "particle it copies (variance-preserving noise mix)."),
                    PROXY_INPUT, *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, resample_steps,
                temperature, jitter, filename_prefix, proxy_verifiers=None, prompt="",
                chunk_size=8, max_candidates=1024) -> io.NodeOutput:
        config = ParticleConfig(n, parse_steps(resample_steps, "resampling steps"), temperature,
                                jitter, seed)
        result = particle_search(generator, verifiers, aggregator.aggregator(), config,
                                 proxy=proxy_verifiers,
                                 **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


def read_settings(method: str, settings: str) -> dict:
    """A method's settings from the node's text (TOML key = value lines), names checked."""
    try:
        values = tomllib.loads(settings)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"cannot read the settings of {method} ({e}): write one 'name = value' "
                         "per line, e.g. n = 8 or schedule = [[0.2, 0.5]]") from None
    methods.get(method).make(values)  # an unknown name is refused here, at queue time
    return values


class SearchNode(io.ComfyNode):
    """Any registered search method (search.methods), its settings as text: where a method
    without a node of its own is used."""

    @classmethod
    def define_schema(cls):
        names = list(methods.REGISTRY)
        return io.Schema(
            node_id="AVITS_Search", display_name="AVITS Search",
            category="AVITS/search",
            description="Runs any registered search method with the settings you write; the "
                        "dedicated nodes give the built-in ones widgets of their own.",
            inputs=[*COMMON_INPUTS,
                    io.Combo.Input("method", options=names, default=names[0],
                                   tooltip="The search method (every method registered in "
                                           "search.methods, plugins named in AVITS_SEARCH_METHODS "
                                           "included)."),
                    io.String.Input("settings", default="", multiline=True,
                                    tooltip="The method's settings, one 'name = value' per line "
                                            "(TOML), e.g. 'n = 8'; empty: its defaults."),
                    PROXY_INPUT, *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def validate_inputs(cls, method, settings, **kwargs):
        try:
            read_settings(method, settings)
        except (ValueError, TypeError) as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, method, settings,
                filename_prefix, proxy_verifiers=None, prompt="", chunk_size=8,
                max_candidates=1024) -> io.NodeOutput:
        chosen = methods.get(method)
        config = chosen.make(read_settings(method, settings), seed)
        extra = {"proxy": proxy_verifiers} if chosen.proxy else {}
        result = chosen.run(generator, verifiers, aggregator.aggregator(), config, **extra,
                            **_options(cls, aggregator, prompt, chunk_size, max_candidates))
        return _outputs(cls, result, filename_prefix)


NODES = [NaiveSampleNode, BestOfNNode, EvoSearchNode, PrunedBestOfNNode, ParticleSearchNode,
         SearchNode]
