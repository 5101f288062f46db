"""AVITS_SelectBest: Best-of-N whose candidates were sampled elsewhere (ComfyUI-Distributed's
workers, other servers): the clips arrive as one batch, as Distributed Collector delivers them,
and are scored by the search engine itself (search.select), so the scores, ARW's history and
the report are those of AVITS_BestOfN over the same seeds."""

from __future__ import annotations

import json

import torch
from comfy_api.latest import io, ui

from ..core.batch import AVBatch
from ..search.engine import SearchLimits
from ..search.result import SearchResult
from ..search.select import select_best
from . import types
from .aggregation import AggregatorChoice
from .parsing import parse_ints
from .report import output_paths, save_result
from .residency import place
from .search import _progress, checked, strip, summary

BATCH, JOINED = "batch [N, C, S]", "joined in time (Distributed Collector)"
AUDIO_LAYOUTS = (JOINED, BATCH)
"""How a sound input holds the clips (the first, as Distributed Collector delivers them)."""


def read_clips(frames: torch.Tensor, per: int, audio: dict, layout: str, fps: float) -> AVBatch:
    """N clips from frames [N x per, H, W, 3] and their sound, one waveform per clip (``BATCH``)
    or the N waveforms one after another in time ([1, C, N x S], ``JOINED``: how Distributed
    Collector concatenates the master's and the workers' audio)."""
    total = frames.shape[0]
    if total % per:
        raise ValueError(f"{total} frames are not a whole number of candidates of "
                         f"frames_per_candidate = {per} frames; set it to the frames of one clip")
    n = total // per
    wave = audio["waveform"]
    if layout == JOINED:
        if wave.shape[0] != 1 or wave.shape[-1] % n:
            raise ValueError(f"audio {tuple(wave.shape)} is not {n} clips' sound joined in time "
                             f"(a batch of 1 whose length is a multiple of {n}); for one "
                             f"waveform per candidate choose audio_layout '{BATCH}'")
        wave = wave[0].reshape(wave.shape[1], n, -1).transpose(0, 1)
    elif wave.shape[0] != n:
        raise ValueError(f"an audio batch of {wave.shape[0]} waveforms for {n} candidates "
                         f"({total} frames / {per}); give one waveform per candidate, in the "
                         f"frames' order (or choose audio_layout '{JOINED}')")
    return AVBatch(frames.reshape(n, per, *frames.shape[1:]), fps, wave.float(),
                   int(audio["sample_rate"]))


def read_seeds(seeds: str, seed: int, n: int) -> list[int]:
    """The listed seeds, or seed, seed + 1, ... (the master's seed, then worker i's seed + i + 1:
    Distributed Seed's rule)."""
    listed = list(parse_ints(seeds, "seeds"))
    if not listed:
        return [seed + k for k in range(n)]
    if len(listed) != n:
        raise ValueError(f"{len(listed)} seeds ({seeds.strip()}) for {n} candidates: list one "
                         "seed per candidate, in the frames' order")
    return listed


def table(result: SearchResult) -> str:
    """One line per candidate, best first: its seed, score and rewards."""
    rows = sorted(result.candidates, key=lambda c: -(c.score or 0.0))
    return "\n".join(f"{'*' if c.id == result.best.id else ' '} #{c.id} seed {c.seed}: score "
                     f"{c.score:.6g}; " + ", ".join(f"{k} {v:.6g}" for k, v in c.rewards.items())
                     for c in rows)


class SelectBestNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_SelectBest", display_name="AVITS Select Best",
            category="AVITS/search",
            description="Best-of-N over clips sampled elsewhere (Distributed Collector's batch, "
                        "other servers): scores each with the verifiers, combines the rewards "
                        "(an ARW state learns from them as in Best-of-N) and returns the best "
                        "with its seed, so any worker can make it again.",
            inputs=[
                io.Image.Input("frames", tooltip="Every candidate's frames, one clip after "
                                                 "another (Distributed Collector's images)."),
                io.Int.Input("frames_per_candidate", default=49, min=1, max=100_000,
                             tooltip="Frames of one clip; the batch must hold a whole number "
                                     "of clips."),
                io.Audio.Input("audio", tooltip="Every candidate's sound, in the frames' order."),
                io.Combo.Input("audio_layout", options=list(AUDIO_LAYOUTS), default=AUDIO_LAYOUTS[0],
                               tooltip="How the sound holds the clips: one after another in "
                                       "time, as Distributed Collector joins them, or one "
                                       "waveform per clip ([N, C, S], as a search's "
                                       "candidates_audio)."),
                io.Float.Input("fps", default=24.0, min=0.1, max=240.0, step=0.01,
                               tooltip="Frames per second of the clips."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="The first clip's seed (the master's Distributed Seed); "
                                     "clip k was sampled from seed + k, as worker i samples "
                                     "seed + i + 1."),
                io.String.Input("seeds", default="",
                                tooltip="Or each clip's seed, in order, e.g. '3, 4, 5, 6' "
                                        "(where the master only delegates, or seeds are not "
                                        "consecutive); empty: seed, seed + 1, ..."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="The text the clips should show (for text verifiers)."),
                types.Verifiers.Input("verifiers", tooltip="The reward models that score each "
                                                           "clip (combine several with AVITS "
                                                           "Verifier Set)."),
                types.Aggregator.Input("aggregator", tooltip="How the rewards become one score: "
                                                             "AVITS ARW State (adaptive, saved "
                                                             "when the prompt succeeds) or AVITS "
                                                             "Aggregator (fixed)."),
                io.String.Input("filename_prefix", default="AVITS/select", advanced=True,
                                tooltip="Where the winner's mp4, report.json and plot.png go, "
                                        "under the output folder."),
                io.Int.Input("chunk_size", default=8, min=1, max=4096, advanced=True,
                             tooltip="Clips verified at once; lower it when memory runs short "
                                     "(the results do not change)."),
            ],
            outputs=[io.Image.Output(display_name="frames"), io.Audio.Output(display_name="audio"),
                     io.Int.Output(display_name="seed", tooltip="The winner's seed: a naive "
                                   "sample (or Replay Candidate) with it makes the clip again."),
                     types.Report.Output(display_name="report"),
                     io.String.Output(display_name="table", tooltip="Every clip, best first: "
                                      "seed, score, rewards.")],
            is_output_node=True, hidden=[io.Hidden.unique_id])

    @classmethod
    def validate_inputs(cls, seeds):
        return checked(lambda: parse_ints(seeds, "seeds"))

    @classmethod
    def execute(cls, frames, frames_per_candidate, audio, audio_layout, fps, seed, seeds, prompt,
                verifiers, aggregator: AggregatorChoice, filename_prefix,
                chunk_size) -> io.NodeOutput:
        clips = read_clips(frames, frames_per_candidate, audio, audio_layout, fps)
        result = select_best(clips, read_seeds(seeds, seed, len(clips)), verifiers,
                             aggregator.aggregator(), prompt=prompt.strip() or None,
                             limits=SearchLimits(chunk_size=chunk_size, max_candidates=len(clips)),
                             on_progress=_progress(cls.hidden.unique_id), place=place,
                             **aggregator.search_options())
        report = save_result(result, output_paths(filename_prefix))
        av = result.best_av
        winner = {"waveform": av.audio[:1].float().cpu(), "sample_rate": av.sample_rate}
        text = table(result)
        shown = {**ui.PreviewImage(strip(av.video[0]), cls=cls).as_dict(),
                 **ui.PreviewAudio(winner, cls=cls).as_dict(),
                 "avits_summary": [summary(report)], "text": [text],
                 "avits_report": [json.dumps(report, allow_nan=False)]}
        return io.NodeOutput(av.video[0], winner, result.best.seed, report, text, ui=shown)


NODES = [SelectBestNode]
