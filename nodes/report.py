"""Saving a search's result (mp4 + report JSON + PNG plot) and the AVITS_SaveReport node."""

from __future__ import annotations

import json
from pathlib import Path

import folder_paths
from comfy_api.latest import io, ui

from ..search.result import SearchResult
from . import types
from .media import write_mp4
from .plots import figure_to_image, save_figure, search_plot


def _next_paths(prefix: str) -> tuple[Path, str]:
    """A fresh '<output>/<subfolder>/<name>_<counter>_' base, ComfyUI's own numbering."""
    full_dir, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_output_directory())
    return Path(full_dir) / f"{name}_{counter:05}_", subfolder


def save_report_files(report: dict, prefix: str) -> dict:
    """report.json and plot.png under the output folder; returns their paths."""
    base, subfolder = _next_paths(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path = base.with_name(base.name + "report.json")
    json_path.write_text(json.dumps(report, indent=1))
    plot_path = base.with_name(base.name + "plot.png")
    save_figure(search_plot(report), plot_path)
    return {"report": str(json_path), "plot": str(plot_path), "subfolder": subfolder,
            "base": base}


def save_result(result: SearchResult, prefix: str) -> dict:
    """The winner as an mp4 (video + audio) with its report and plot beside it."""
    report = result.report()
    paths = save_report_files(report, prefix)
    video_path = paths.pop("base").with_name(Path(paths["report"]).name.replace("report.json", "best.mp4"))
    av = result.best_av
    write_mp4(video_path, av.video[0], av.fps, av.audio[0], av.sample_rate)
    report["files"] = {"video": str(video_path), "report": paths["report"], "plot": paths["plot"]}
    Path(paths["report"]).write_text(json.dumps(report, indent=1))
    return {**report["files"], "subfolder": paths["subfolder"]}


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
        paths = save_report_files(clean, filename_prefix)
        plot = figure_to_image(search_plot(clean))
        return io.NodeOutput(paths["report"], ui={**ui.PreviewImage(plot, cls=cls).as_dict(),
                                                  "text": [paths["report"]]})


NODES = [SaveReportNode]
