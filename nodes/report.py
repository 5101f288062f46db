"""Saving a search's result (mp4 + report JSON + PNG plot) and the AVITS_SaveReport node."""

from __future__ import annotations

import json
from pathlib import Path

import folder_paths
from comfy_api.latest import io, ui

from ..search.result import SearchResult
from . import types
from ..core.media import write_mp4
from .plots import figure_to_image, save_figure, search_plot


def _output_paths(prefix: str) -> dict[str, Path]:
    """Fresh '<output>/<prefix>_<counter>_{report.json, plot.png, best.mp4}' paths, numbered the
    way ComfyUI numbers its own outputs."""
    full_dir, name, counter, _, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_output_directory())
    base = Path(full_dir) / f"{name}_{counter:05}_"
    base.parent.mkdir(parents=True, exist_ok=True)
    return {k: base.with_name(base.name + suffix) for k, suffix in
            (("report", "report.json"), ("plot", "plot.png"), ("video", "best.mp4"))}


def save_result(result: SearchResult, prefix: str) -> dict:
    """The winner as an mp4 (video + audio) with its report and plot beside it; returns the
    report, whose ``files`` name the three."""
    paths = _output_paths(prefix)
    report = {**result.report(), "files": {k: str(p) for k, p in paths.items()}}
    av = result.best_av
    write_mp4(paths["video"], av.video[0], av.fps, av.audio[0], av.sample_rate)
    paths["report"].write_text(json.dumps(report, indent=1, allow_nan=False))
    save_figure(search_plot(report), paths["plot"])
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
        paths = _output_paths(filename_prefix)
        paths["report"].write_text(json.dumps(clean, indent=1, allow_nan=False))
        plot = figure_to_image(search_plot(clean), paths["plot"])
        return io.NodeOutput(str(paths["report"]), ui={**ui.PreviewImage(plot, cls=cls).as_dict(),
                                                       "text": [str(paths["report"])]})


NODES = [SaveReportNode]
