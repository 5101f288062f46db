"""Search nodes: naive sampling, Best-of-N, EvoSearch, pruned Best-of-N, particles and any
registered method. Each checks its text inputs when the prompt is queued and its plan before
any work, drives one progress bar over the whole search with the leader so far as its preview,
stops on an interrupt between steps and chunks, and shows the result on the node: the winning
frames as a strip, an audio player, a one-line summary and a table of every candidate with the
recipe that makes it again. The winner's mp4 is a saved output (queue history, Assets)."""

from __future__ import annotations

import json
import tomllib
from typing import Any, Callable

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ..core.batch import AVBatch
from ..core.generator import MUTATIONS
from ..search import methods
from ..search.engine import SearchLimits
from ..search.result import SearchResult
from ..search.strategies import naive
from . import types
from .aggregation import AggregatorChoice
from .parsing import parse_ints, parse_schedule, parse_steps
from .report import OutputPaths, output_paths, save_result, save_video
from .residency import place

PREVIEW_FRAMES = 6
BON, EVO, PRUNED, PARTICLES = (methods.get(m).config() for m in
                                ("best_of_n", "evosearch", "pruned_best_of_n", "particles"))
"""The defaults the nodes show: the configs' own (search.methods holds the one copy)."""


def _text(values) -> str:
    """(0, 0.33) -> '0, 0.33'; ((0.2, 0.5), ...) -> '0.2:0.5, ...': a config default as node text."""
    return ", ".join(":".join(f"{x:g}" for x in v) if isinstance(v, tuple) else f"{v:g}" for v in values)


PRUNING_DEFAULT = _text(PRUNED.schedule)
PRUNING_NOTE = "Measured on the continuous ToyAV: see docs/claims.md."


def _progress(node_id: str | None):
    """One ComfyUI progress bar over the whole search, its preview the leader so far; checks for
    an interrupt at every update (the bar itself throttles what it sends, so the check is
    explicit)."""
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


class Candidates:
    """Every finished candidate's clip as it is verified (the search itself keeps only those
    that can still win): kept in memory for the ``candidates`` outputs and, with
    keep_candidates, saved as '<prefix>_<counter>_candidate_<id>.mp4'."""

    def __init__(self, paths: OutputPaths, keep: bool, save: bool) -> None:
        self.paths, self.keep, self.save = paths, keep, save
        self.clips: dict[int, AVBatch] = {}
        self.files: dict[int, str] = {}

    def __call__(self, ids: list[int], av: AVBatch) -> None:
        for j, i in enumerate(ids):
            if self.save:
                path = self.paths(f"candidate_{i:03}.mp4")
                save_video(path, av, j)
                self.files[i] = str(path)
            if self.keep:
                self.clips[i] = AVBatch(av.video[j:j + 1].cpu(), av.fps, av.audio[j:j + 1].cpu(),
                                        av.sample_rate)

    def batches(self, result: SearchResult) -> tuple[torch.Tensor, dict]:
        """Frames [N x T, H, W, 3] and audio [N, C, S] of the finished candidates, best first
        (the winner alone where they were not kept)."""
        ranked = sorted((c for c in result.candidates if c.id in self.clips),
                        key=lambda c: -(c.score if c.score == c.score else float("-inf")))
        clips = [self.clips[c.id] for c in ranked] or [result.best_av]
        frames = torch.cat([c.video[0] for c in clips]).float()
        audio = torch.cat([c.audio for c in clips]).float()
        return frames, {"waveform": audio, "sample_rate": clips[0].sample_rate}


def _wanted(cls, outputs: tuple[int, ...]) -> bool:
    """Whether any node of the queued prompt reads one of these outputs of this node."""
    me = str(cls.hidden.unique_id)
    return any(isinstance(v, list) and len(v) == 2 and str(v[0]) == me and v[1] in outputs
               for node in (cls.hidden.prompt or {}).values()
               for v in node.get("inputs", {}).values())


def summary(report: dict) -> str:
    """One line: the winner, what makes it again, its rewards, the compute and the time."""
    best = next(c for c in report["candidates"] if c["id"] == report["best"])
    rewards = ", ".join(f"{k} {v:.3g}" for k, v in best["rewards"].items())
    return (f"winner #{best['id']} of {len(report['candidates'])} (recipe {best['recipe']}): "
            f"score {best['score']:.3g}; {rewards}; {report['nfe']} NFE; "
            f"{report['timings']['total']:.1f} s")


def strip(frames: torch.Tensor, n: int = PREVIEW_FRAMES, gap: int = 2) -> torch.Tensor:
    """[1, H, n W + gaps, 3]: n frames spread over the clip, side by side."""
    pick = torch.linspace(0, frames.shape[0] - 1, min(n, frames.shape[0])).long()
    h, _, c = frames.shape[1:]
    parts = []
    for k in pick.tolist():
        parts += [frames[k].float().cpu(), torch.ones(h, gap, c)]
    return torch.cat(parts[:-1], 1)[None]


def _finish(cls, result: SearchResult, paths: OutputPaths, kept: Candidates) -> io.NodeOutput:
    for c in result.candidates:
        c.file = kept.files.get(c.id)
    report = save_result(result, paths)
    av = result.best_av
    frames = av.video[0]
    audio = {"waveform": av.audio[:1].float().cpu(), "sample_rate": av.sample_rate}
    all_frames, all_audio = kept.batches(result)
    table = [{k: c.get(k) for k in ("id", "generation", "recipe", "score", "rewards", "pruned_at",
                                    "file")} for c in report["candidates"]]
    shown = {**ui.PreviewImage(strip(frames), cls=cls).as_dict(),
             **ui.PreviewAudio(audio, cls=cls).as_dict(),
             "video": [paths.saved("best.mp4")],
             "avits_summary": [summary(report)],
             "avits_candidates": [json.dumps(table, allow_nan=False)],
             "avits_report": [json.dumps(report, allow_nan=False)]}
    return io.NodeOutput(frames, audio, result.best_latent, report, all_frames, all_audio, ui=shown)


def _search(cls, run: Callable[..., SearchResult], aggregator: AggregatorChoice,
            filename_prefix: str, prompt: str, chunk_size: int, max_candidates: int,
            keep_candidates: bool) -> io.NodeOutput:
    """Run ``run(aggregator, **options)`` with what every search takes from its node (the
    prompt text, the budget, the hooks) and show its result."""
    paths = output_paths(filename_prefix)
    kept = Candidates(paths, keep=keep_candidates or _wanted(cls, (4, 5)), save=keep_candidates)
    options: dict[str, Any] = {
        "prompt": prompt.strip() or None,
        "limits": SearchLimits(chunk_size=chunk_size, max_candidates=max_candidates),
        "on_progress": _progress(cls.hidden.unique_id), "place": place, "on_clips": kept,
        **aggregator.search_options()}
    return _finish(cls, run(aggregator.aggregator(), **options), paths, kept)


def run_method(cls, method: str, settings: dict, generator, verifiers, aggregator: AggregatorChoice,
               seed: int, filename_prefix: str, proxy_verifiers=None, draft=None, prompt: str = "",
               chunk_size: int = 8, max_candidates: int = 1024,
               keep_candidates: bool = False) -> io.NodeOutput:
    """A registered method (search.methods) with its settings by field name."""
    chosen = methods.get(method)
    config = chosen.make(settings, seed)
    extra = {"proxy": proxy_verifiers} if chosen.proxy else {}
    if chosen.draft:
        extra["draft"] = draft
    return _search(cls, lambda agg, **o: chosen.run(generator, verifiers, agg, config, **extra, **o),
                   aggregator, filename_prefix, prompt, chunk_size, max_candidates, keep_candidates)


def checked(read: Callable[[], Any]) -> bool | str:
    """A queue-time check: True, or the reason the inputs cannot be read."""
    try:
        read()
    except (ValueError, TypeError) as e:
        return str(e)
    return True


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
    io.Boolean.Input("keep_candidates", default=False, optional=True, advanced=True,
                     tooltip="Save every finished candidate's mp4 beside the winner's "
                             "('..._candidate_<id>.mp4'); the report and the node's table "
                             "name each file with its scores and recipe."),
]
COMMON_OUTPUTS = [io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                  io.Latent.Output(display_name="latent"), types.Report.Output(display_name="report"),
                  io.Image.Output(display_name="candidates",
                                  tooltip="Every finished candidate's frames, best first (N x "
                                          "frames images); connect it to keep them all."),
                  io.Audio.Output(display_name="candidates_audio",
                                  tooltip="Every finished candidate's audio as a batch, best "
                                          "first, in the order of 'candidates'.")]
HIDDEN = [io.Hidden.unique_id, io.Hidden.prompt]


class NaiveSampleNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_NaiveSample", display_name="AVITS Naive Sample",
            category="AVITS/search",
            description="One sample, scored by the verifiers: the baseline a search improves on.",
            inputs=[*COMMON_INPUTS, *TAIL_INPUTS], outputs=COMMON_OUTPUTS,
            is_output_node=True, hidden=HIDDEN)

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, filename_prefix,
                prompt="", chunk_size=8, max_candidates=1024, keep_candidates=False) -> io.NodeOutput:
        return _search(cls, lambda agg, **o: naive(generator, verifiers, agg, seed, **o), aggregator,
                       filename_prefix, prompt, chunk_size, max_candidates, keep_candidates)


class BestOfNNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_BestOfN", display_name="AVITS Best-of-N",
            category="AVITS/search",
            description="Samples N candidates from N seeds, scores each with every verifier, "
                        "combines the rewards and returns the best.",
            inputs=[*COMMON_INPUTS,
                    io.Int.Input("n", default=BON.n, min=1, max=1024,
                                 tooltip="Number of candidates (the reference uses 10 for LTX-2)."),
                    *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, filename_prefix,
                **tail) -> io.NodeOutput:
        return run_method(cls, "best_of_n", {"n": n}, generator, verifiers, aggregator, seed,
                          filename_prefix, **tail)


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
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def validate_inputs(cls, evolution_steps, population_sizes, elites):
        # only the inputs ComfyUI cannot check itself: it skips its min/max checks of those named
        return checked(lambda: methods.get("evosearch").make(
            cls.shape(evolution_steps, population_sizes, elites)).check())

    @staticmethod
    def shape(evolution_steps, population_sizes, elites) -> dict:
        """The settings that fix the population's shape, read from the node's text."""
        return {"evolution_steps": parse_steps(evolution_steps, "evolution steps"),
                "population_sizes": parse_ints(population_sizes, "population sizes"),
                "elites": elites}

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, evolution_steps,
                population_sizes, elites, mutation_rate, tournament_ratio, mutation,
                filename_prefix, **tail) -> io.NodeOutput:
        settings = {**cls.shape(evolution_steps, population_sizes, elites),
                    "mutation_rate": mutation_rate, "tournament_ratio": tournament_ratio,
                    "mutation": mutation}
        return run_method(cls, "evosearch", settings, generator, verifiers, aggregator, seed,
                          filename_prefix, **tail)


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
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def validate_inputs(cls, schedule):
        return checked(lambda: parse_schedule(schedule))

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, schedule,
                filename_prefix, **tail) -> io.NodeOutput:
        return run_method(cls, "pruned_best_of_n", {"n": n, "schedule": parse_schedule(schedule)},
                          generator, verifiers, aggregator, seed, filename_prefix, **tail)


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
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def validate_inputs(cls, resample_steps):
        return checked(lambda: parse_steps(resample_steps, "resampling steps"))

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, n, resample_steps,
                temperature, jitter, filename_prefix, **tail) -> io.NodeOutput:
        settings = {"n": n, "resample_steps": parse_steps(resample_steps, "resampling steps"),
                    "temperature": temperature, "jitter": jitter}
        return run_method(cls, "particles", settings, generator, verifiers, aggregator, seed,
                          filename_prefix, **tail)


DRAFT = methods.get("draft_then_commit").config()
DRAFT_INPUT = types.Generator.Input(
    "draft", tooltip="The cheap generator that explores: the same model and latent with fewer "
                     "steps (a second scheduler), under EasyCache, or with a cheaper decoder. It "
                     "must draw the same noise from a seed as 'generator' (checked before any work).")


class DraftSearchNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_DraftSearch", display_name="AVITS Draft, then Commit",
            category="AVITS/search",
            description="Explores N seeds with a cheap draft generator, scores the drafts (ARW "
                        "does not learn from them) and runs only the best few again with the "
                        "full generator; the best committed candidate wins.",
            inputs=[*COMMON_INPUTS, DRAFT_INPUT,
                    io.Int.Input("n", default=DRAFT.n, min=1, max=1024, tooltip="Drafts (seeds)."),
                    io.Int.Input("commit", default=DRAFT.commit, min=1, max=1024,
                                 tooltip="The best drafts run again in full; commit = n with the "
                                         "full generator as draft is Best-of-N."),
                    io.String.Input("draft_schedule", default="",
                                    tooltip="Optional pruning of the drafts, 'step:fraction kept' "
                                            "on the draft's own steps (e.g. '0.5:0.5'); empty: "
                                            "every draft finishes."),
                    PROXY_INPUT, *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def validate_inputs(cls, n, commit, draft_schedule):
        return checked(lambda: methods.get("draft_then_commit").make(
            {"n": n, "commit": commit, "schedule": parse_schedule(draft_schedule)}).check())

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, draft, n, commit,
                draft_schedule, filename_prefix, **tail) -> io.NodeOutput:
        settings = {"n": n, "commit": commit, "schedule": parse_schedule(draft_schedule)}
        return run_method(cls, "draft_then_commit", settings, generator, verifiers, aggregator,
                          seed, filename_prefix, draft=draft, **tail)


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
                    PROXY_INPUT, types.Generator.Input("draft", optional=True,
                                                       tooltip=DRAFT_INPUT.tooltip),
                    *TAIL_INPUTS],
            outputs=COMMON_OUTPUTS, is_output_node=True, hidden=HIDDEN)

    @classmethod
    def validate_inputs(cls, method, settings):
        return checked(lambda: read_settings(method, settings))

    @classmethod
    def execute(cls, generator, verifiers, aggregator: AggregatorChoice, seed, method, settings,
                filename_prefix, **tail) -> io.NodeOutput:
        return run_method(cls, method, read_settings(method, settings), generator, verifiers,
                          aggregator, seed, filename_prefix, **tail)


NODES = [NaiveSampleNode, BestOfNNode, EvoSearchNode, PrunedBestOfNNode, ParticleSearchNode,
         DraftSearchNode, SearchNode]
