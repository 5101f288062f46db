"""Aggregator nodes: static combination modes, the shared ARW state, and its inspector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from comfy_api.latest import io, ui

from ..search.aggregation import AGGREGATORS, ARW, MAX_WINDOW, OPTIMIZERS, Aggregator, RewardError, make_aggregator
from ..search.arw_state import TRACE_LIMIT, ARWSettings, SharedARW
from . import types
from .parsing import parse_stats, parse_weights
from .plots import figure_to_image, scales_plot
from .transactions import RAW_RESET, open_state


@dataclass
class AggregatorChoice:
    """What flows through an AVITS_AGGREGATOR socket: how a search gets its aggregator. A static
    mode builds a fresh one per search; a shared ARW state is the prompt's working copy, which
    every search of the prompt updates and which is saved when the prompt succeeds."""

    label: str
    build: Callable[[], Aggregator]
    shared: SharedARW | None = None

    def aggregator(self) -> Aggregator:
        return self.shared.arw if self.shared else self.build()

    def search_options(self) -> dict[str, Any]:
        """The hooks a search takes from a shared state: record the scales after each update,
        and check the verifier set against what the state learned from, before any work."""
        if self.shared is None:
            return {}
        return {"after_observe": self.shared.after_observe, "bind": self.shared.bind}


WEIGHTS_TOOLTIP = ("Preference weight per verifier: 'name=0.2, other=0.8' by reward name, or "
                   "'0.2, 0.8' in the order of the verifier set this prompt uses. Empty: equal "
                   "weights (0.5/0.5 for two). Finite and >= 0.")


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
                io.Combo.Input("mode", options=[a for a in AGGREGATORS if a != "arw"],
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
                        "rewards on different scales count as their weights say. A prompt that "
                        "fails or is interrupted leaves the saved state exactly as it was.",
            inputs=[
                io.String.Input("name", default="default",
                                tooltip="States with the same name share their history and "
                                        "scales; saved under the user directory in avits/arw/. "
                                        "One state learns from one verifier set."),
                io.String.Input("weights", default="", tooltip=WEIGHTS_TOOLTIP),
                io.Combo.Input("optimizer", options=list(OPTIMIZERS), default=OPTIMIZERS[0],
                               advanced=True, tooltip="Optimizer of the log-variances; fixed "
                                                      "when the state is created (reset to change)."),
                io.Float.Input("lr", default=0.05, min=1e-5, max=1.0, step=0.005, advanced=True,
                               tooltip="Learning rate of the scale fit (finite, at most 1)."),
                io.Int.Input("iterations", default=50, min=0, max=10000, advanced=True,
                             tooltip="Optimizer steps after each batch of rewards."),
                io.Int.Input("window", default=0, min=0, max=MAX_WINDOW, advanced=True,
                             tooltip="0 (the reference default): learn from every reward seen, "
                                     "kept as exact running statistics, so the state stays a "
                                     f"few kB however long it learns (its plot keeps the newest "
                                     f"{TRACE_LIMIT} updates). N >= 2: only the newest N "
                                     "rewards per verifier. Fixed when the state is created."),
                io.Boolean.Input("reset", default=False,
                                 tooltip="Start this state afresh when the prompt succeeds; the "
                                         "old file is kept beside it as <name>.json.bak-<time>. "
                                         "It resets on every queue while this is on."),
            ],
            outputs=[types.Aggregator.Output(display_name="aggregator")],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
            not_idempotent=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")  # the state changes between runs: never reuse a cached output

    @classmethod
    def execute(cls, name, weights, optimizer, lr, iterations, window, reset) -> io.NodeOutput:
        raw = ((cls.hidden.prompt or {}).get(cls.hidden.unique_id) or {}).get("inputs", {})
        if RAW_RESET in raw:
            raise ValueError(f"reset must be true or false (a JSON boolean), got {raw[RAW_RESET]}; "
                             "ComfyUI would read any string as true, so nothing was reset")
        settings = ARWSettings(parse_weights(weights), lr, iterations, optimizer, window or None)
        shared = open_state(name.strip(), settings, reset)
        text = (f"ARW state '{shared.name}': {shared.arw.history_size} rewards per verifier"
                + (", reset when this prompt succeeds" if reset else ""))
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
            inputs=[types.Aggregator.Input("aggregator", tooltip="From AVITS ARW State."),
                    types.Report.Input("after", optional=True,
                                       tooltip="A search's report: the state is read after that "
                                               "search has learned from its rewards (without "
                                               "it ComfyUI may run this node first).")],
            outputs=[io.String.Output(display_name="summary"), io.Image.Output(display_name="plot")],
            is_output_node=True,
            not_idempotent=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")

    @classmethod
    def execute(cls, aggregator: AggregatorChoice, after: dict | None = None) -> io.NodeOutput:
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
            try:
                w = arw.weights()  # known once a search of this prompt bound its verifier set
            except RewardError:
                w = {}
            lines += [f"  {k}: sigma = {s:.6g}" + (f", weight = {w[k]:g}, effective = "
                                                   f"{w[k] / s:.6g}" if k in w else "")
                      for k, s in sig.items()]
        else:
            lines.append("no rewards yet: scales start at sigma = 1")
        text = "\n".join(lines)
        image = figure_to_image(scales_plot(shared.trace, f"ARW '{shared.name}'"))
        return io.NodeOutput(text, image, ui={**ui.PreviewText(text).as_dict(),
                                              **ui.PreviewImage(image, cls=cls).as_dict()})


NODES = [AggregatorNode, ARWStateNode, ARWInspectNode]
