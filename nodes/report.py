"""Saving a search's result (mp4 + report JSON + PNG plot) and the AVITS_SaveReport node."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import folder_paths
from comfy_api.latest import InputImpl, Types, io, ui

from ..core.batch import AVBatch
from ..search.result import SearchResult
from . import types
from .plots import figure_to_image, save_figure, search_plot


@dataclass(frozen=True)
class OutputPaths:
    """Where one search's files go: '<output>/<prefix>_<counter>_<name>', numbered the way
    ComfyUI numbers its own outputs, and the subfolder the frontend asks /view for."""

    folder: Path
    stem: str
    subfolder: str

    def __call__(self, name: str) -> Path:
        return self.folder / f"{self.stem}{name}"

    def saved(self, name: str) -> ui.SavedResult:
        """The file as a UI output (so it is in the queue history and the Assets panel)."""
        return ui.SavedResult(f"{self.stem}{name}", self.subfolder, io.FolderType.output)


def output_paths(prefix: str) -> OutputPaths:
    full_dir, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_output_directory())
    Path(full_dir).mkdir(parents=True, exist_ok=True)
    return OutputPaths(Path(full_dir), f"{name}_{counter:05}_", subfolder)


def save_video(path: Path, av: AVBatch, k: int = 0) -> None:
    """Clip ``k`` of ``av`` as an mp4 with its sound, through ComfyUI's own video writer."""
    audio = {"waveform": av.audio[k:k + 1].float().cpu(), "sample_rate": av.sample_rate}
    video = InputImpl.VideoFromComponents(Types.VideoComponents(
        images=av.video[k].float().cpu(), audio=audio,
        frame_rate=Fraction(av.fps).limit_denominator(1001)))
    video.save_to(str(path), format=Types.VideoContainer.MP4, codec=Types.VideoCodec.H264)


def save_result(result: SearchResult, paths: OutputPaths) -> dict:
    """The winner as an mp4 (video + audio) with its report and plot beside it; returns the
    report, whose ``files`` name the three."""
    files = {"report": paths("report.json"), "plot": paths("plot.png"), "video": paths("best.mp4")}
    report = {**result.report(), "files": {k: str(p) for k, p in files.items()}}
    save_video(files["video"], result.best_av)
    files["report"].write_text(json.dumps(report, indent=1, allow_nan=False))
    save_figure(search_plot(report), files["plot"])
    return report


class SaveReportNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_SaveReport",
            display_name="AVITS Save Report",
            category="AVITS/evaluation",
            description="Saves a search report as JSON with a PNG plot of every candidate's "
                        "score per generation (the winner marked) and the ARW scales over time.",
            inputs=[
                types.Report.Input("report", tooltip="From a search node."),
                io.String.Input("filename_prefix", default="AVITS/report",
                                tooltip="Path under the output folder; a counter is appended."),
            ],
            outputs=[io.String.Output(display_name="path")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, report: dict, filename_prefix: str) -> io.NodeOutput:
        clean = {k: v for k, v in report.items() if k != "files"}
        paths = output_paths(filename_prefix)
        paths("report.json").write_text(json.dumps(clean, indent=1, allow_nan=False))
        plot = figure_to_image(search_plot(clean), paths("plot.png"))
        return io.NodeOutput(str(paths("report.json")), ui={**ui.PreviewImage(plot, cls=cls).as_dict(),
                                                            "text": [str(paths("report.json"))]})


NODES = [SaveReportNode]
