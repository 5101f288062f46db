"""An ARW state that travels: export a named state as its JSON file, import one learned on
another machine (a worker, a serverless instance) by merging it in (search.arw_merge says how).
The nodes work on the prompt's working copy, so an import is saved only when the prompt
succeeds; the HTTP routes do the same on the saved file, for scripts and orchestrators:

    GET  /avits/arw/{name}   the saved state file (404 when there is none)
    POST /avits/arw/{name}   body: an exported state; merged into the saved one (created if
                             there is none) and written; answers its history size and scales
"""

from __future__ import annotations

import json

from aiohttp import web
from comfy_api.latest import io, ui

from ..search.arw_merge import already_merged, merge, read_export
from ..search.arw_state import ARWSettings, ARWStateError, SharedARW
from . import types
from .aggregation import AggregatorChoice
from .report import output_paths
from .transactions import store


def _shared(aggregator: AggregatorChoice) -> SharedARW:
    if aggregator.shared is None:
        raise ValueError(f"'{aggregator.label}' is a static aggregator with nothing to carry; "
                         "connect an AVITS ARW State node")
    return aggregator.shared


def _status(shared: SharedARW) -> dict:
    return {"name": shared.name, "history_size": shared.arw.history_size,
            "sigmas": shared.arw.sigmas()}


class ARWExportNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ARWExport", display_name="AVITS ARW Export",
            category="AVITS/aggregation",
            description="Writes an ARW state as it stands in this prompt to a JSON file in the "
                        "output folder (and as text), for AVITS ARW Import on another machine.",
            inputs=[types.Aggregator.Input("aggregator", tooltip="From AVITS ARW State."),
                    types.Report.Input("after", optional=True,
                                       tooltip="A search's report: the state is exported after "
                                               "that search has learned from its rewards."),
                    io.String.Input("filename_prefix", default="AVITS/arw",
                                    tooltip="Path under the output folder; a counter and the "
                                            "state's name are appended.")],
            outputs=[io.String.Output(display_name="state", tooltip="The exported state's JSON.")],
            is_output_node=True, not_idempotent=True)

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")  # the state changes between runs

    @classmethod
    def execute(cls, aggregator: AggregatorChoice, filename_prefix: str,
                after: dict | None = None) -> io.NodeOutput:
        shared = _shared(aggregator)
        text = json.dumps(shared.payload(), allow_nan=False)
        path = output_paths(filename_prefix)(f"{shared.name}.json")
        path.write_text(text)
        return io.NodeOutput(text, ui=ui.PreviewText(f"ARW state '{shared.name}' "
                                                     f"({shared.arw.history_size} rewards per "
                                                     f"verifier) exported to {path}"))


class ARWImportNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AVITS_ARWImport", display_name="AVITS ARW Import",
            category="AVITS/aggregation",
            description="Merges an exported ARW state into this one: the history adds up as if "
                        "this state had seen every reward the other saw, and its scales are "
                        "refitted. Saved when the prompt succeeds; a state of another verifier "
                        "set is refused and nothing changes.",
            inputs=[types.Aggregator.Input("aggregator", tooltip="From AVITS ARW State: the "
                                                                 "state that takes the import."),
                    io.String.Input("state", multiline=True,
                                    tooltip="An exported state's JSON (AVITS ARW Export's file "
                                            "or text, or GET /avits/arw/<name> of another "
                                            "server).")],
            outputs=[types.Aggregator.Output(display_name="aggregator",
                                             tooltip="The state with the import merged in: "
                                                     "connect the searches that should see it.")],
            not_idempotent=True)

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")

    @classmethod
    def execute(cls, aggregator: AggregatorChoice, state: str) -> io.NodeOutput:
        shared = _shared(aggregator)
        try:
            other = read_export(state.encode(), "given to AVITS ARW Import")
            if already_merged(shared, other):
                note = f"'{other.name}' was merged into '{shared.name}' before: skipped"
            else:
                merge(shared, other)
                note = f"'{other.name}' merged into '{shared.name}'"
        except ARWStateError as e:
            raise ValueError(str(e)) from None
        text = f"{note}: {shared.arw.history_size} rewards per verifier, saved if this prompt succeeds"
        return io.NodeOutput(aggregator, ui=ui.PreviewText(text))


def add_routes(routes: web.RouteTableDef) -> None:
    """GET and POST /avits/arw/{name} (the module docstring says what they do)."""

    @routes.get("/avits/arw/{name}")
    async def export_state(request: web.Request) -> web.Response:
        try:
            path = store().path(request.match_info["name"])
        except ARWStateError as e:
            return web.json_response({"error": str(e)}, status=400)
        if not path.exists():
            return web.json_response({"error": f"there is no ARW state called "
                                               f"'{request.match_info['name']}'"}, status=404)
        return web.Response(body=path.read_bytes(), content_type="application/json")

    @routes.post("/avits/arw/{name}")
    async def import_state(request: web.Request) -> web.Response:
        name, states = request.match_info["name"], store()
        try:
            other = read_export(await request.read(), "posted to /avits/arw")
            new = not states.path(name).exists()
            shared = states.open(name, ARWSettings(optimizer=other.arw.optimizer_name,
                                                   window=other.arw.window) if new else None)
            merge(shared, other)
            states.commit(shared)
        except ARWStateError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(_status(shared))


NODES = [ARWExportNode, ARWImportNode]
