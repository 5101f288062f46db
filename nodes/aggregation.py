"""Aggregator nodes: static combination modes, the shared ARW state, and its inspector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import folder_paths
from comfy_api.latest import io, ui

from ..search.aggregation import ARW, Aggregator, make_aggregator
from ..search.arw_state import ARWRegistry, SharedARW
from . import types
from .parsing import parse_stats, parse_weights
from .plots import figure_to_image, scales_plot

_registry: ARWRegistry | None = None


def arw_registry() -> ARWRegistry:
    """The server's ARW states, under ComfyUI's user directory (created on first use)."""
    global _registry
    directory = Path(folder_paths.get_user_directory()) / "avits" / "arw"
    if _registry is None or _registry.directory != directory:
        _registry = ARWRegistry(directory)
    return _registry


@dataclass
class AggregatorChoice:
    """What flows through an AVITS_AGGREGATOR socket: how a search gets its aggregator. A static
    mode builds a fresh one per search; a shared ARW state is the same object every time and is
    saved after each update."""

    label: str
    build: Callable[[], Aggregator]
    shared: SharedARW | None = None

    def aggregator(self) -> Aggregator:
        return self.shared.arw if self.shared else self.build()

    def after_observe(self) -> Callable[[], None] | None:
        return self.shared.after_observe if self.shared else None


WEIGHTS_TOOLTIP = ("Preference weight per verifier: '0.2, 0.8' in the order of the verifier set, "
                   "or 'name=0.2, other=0.8'. Empty: equal weights (0.5/0.5 for two).")


class AggregatorNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_Aggregator",
            display_name="AVITS Aggregator",
            category="AVITS/aggregation",
            description="Combines several verifiers' rewards into one score with a fixed rule. "
                        "For the paper's adaptive weighting use AVITS ARW State.",
            inputs=[
                io.Combo.Input("mode", options=["weighted_sum", "rank", "min_max", "z_score_fixed",
                                                "z_score_history", "z_score_candidate"],
                               default="weighted_sum",
                               tooltip="weighted_sum: raw rewards times weights. rank: mean rank in "
                                       "the candidate set. min_max: rescaled to 0..1 over the set. "
                                       "z_score_*: standardised with fixed statistics, the search's "
                                       "reward history, or the candidate set."),
                io.String.Input("weights", default="", tooltip=WEIGHTS_TOOLTIP),
                io.String.Input("statistics", default="", advanced=True,
                                tooltip="For z_score_fixed: 'name=mean:std, ...'. Empty: the "
                                        "reference's (videoreward_ta=-0.4779:0.8785, "
                                        "javisscore=0.1613:0.1033)."),
            ],
            outputs=[types.Aggregator.Output(display_name="aggregator")],
        )

    @classmethod
    def execute(cls, mode, weights, statistics) -> io.NodeOutput:
        w, stats = parse_weights(weights), parse_stats(statistics)
        make_aggregator(mode, w, stats)  # fail here, on this node, if the options are wrong
        return io.NodeOutput(AggregatorChoice(mode, lambda: make_aggregator(mode, w, stats)))


class ARWStateNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ARWState",
            display_name="AVITS ARW State",
            category="AVITS/aggregation",
            description="Adaptive Reward Weighting: learns one scale per verifier from every "
                        "reward it has seen, across queued prompts and server restarts, so "
                        "rewards on different scales count as their weights say.",
            inputs=[
                io.String.Input("name", default="default",
                                tooltip="States with the same name share their history and "
                                        "scales; saved under the user directory in avits/arw/."),
                io.String.Input("weights", default="", tooltip=WEIGHTS_TOOLTIP),
                io.Combo.Input("optimizer", options=["adam", "rmsprop", "sgd"], default="adam",
                               advanced=True, tooltip="Optimizer of the log-variances; fixed "
                                                      "when the state is created (reset to change)."),
                io.Float.Input("lr", default=0.05, min=1e-5, max=10.0, step=0.005, advanced=True,
                               tooltip="Learning rate of the scale fit."),
                io.Int.Input("iterations", default=50, min=0, max=10000, advanced=True,
                             tooltip="Optimizer steps after each batch of rewards."),
                io.Int.Input("window", default=0, min=0, max=10_000_000, advanced=True,
                             tooltip="Keep only the newest N rewards per verifier; 0 keeps all "
                                     "(the reference default)."),
                io.Boolean.Input("reset", default=False,
                                 tooltip="Forget the history and scales of this state when the "
                                         "node runs (it runs on every queue while this is on)."),
            ],
            outputs=[types.Aggregator.Output(display_name="aggregator")],
            not_idempotent=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")  # the state changes between runs: never reuse a cached output

    @classmethod
    def execute(cls, name, weights, optimizer, lr, iterations, window, reset) -> io.NodeOutput:
        shared = arw_registry().get(name.strip(), optimizer, reset=reset)
        shared.arw.configure(parse_weights(weights), lr, iterations, window or None)
        arw = shared.arw
        text = (f"ARW state '{shared.name}': {arw.history_size} rewards per verifier"
                + (", reset" if reset else ""))
        return io.NodeOutput(AggregatorChoice(f"arw:{shared.name}", ARW, shared),
                             ui=ui.PreviewText(text))


class ARWInspectNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ARWInspect",
            display_name="AVITS ARW Inspect",
            category="AVITS/aggregation",
            description="Shows an ARW state's learned scales, history size and a plot of the "
                        "scales over time.",
            inputs=[types.Aggregator.Input("aggregator", tooltip="From AVITS ARW State.")],
            outputs=[io.String.Output(display_name="summary"), io.Image.Output(display_name="plot")],
            is_output_node=True,
            not_idempotent=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")

    @classmethod
    def execute(cls, aggregator: AggregatorChoice) -> io.NodeOutput:
        if aggregator.shared is None:
            raise ValueError(f"'{aggregator.label}' is a static aggregator with nothing to "
                             "inspect; connect an AVITS ARW State node")
        shared = aggregator.shared
        arw = shared.arw
        sig = arw.sigmas()
        lines = [f"ARW state '{shared.name}' ({shared.path})",
                 f"rewards seen per verifier: {arw.history_size}",
                 f"updates: {len(shared.trace)}"]
        if sig:
            w = arw.weights()
            lines += [f"  {k}: sigma = {s:.6g}, weight = {w[k]:g}, effective = {w[k] / s:.6g}"
                      for k, s in sig.items()]
        else:
            lines.append("no rewards yet: scales start at sigma = 1")
        text = "\n".join(lines)
        image = figure_to_image(scales_plot(shared.trace, f"ARW '{shared.name}'"))
        return io.NodeOutput(text, image, ui={**ui.PreviewText(text).as_dict(),
                                              **ui.PreviewImage(image, cls=cls).as_dict()})


NODES = [AggregatorNode, ARWStateNode, ARWInspectNode]
