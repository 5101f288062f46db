"""API graphs for the integration tests: the shipped workflows with inputs changed, and the
reports and state files they leave, read strictly (a NaN token is an error)."""

from __future__ import annotations

import json
from pathlib import Path

from comfyctl import REPO

WORKFLOWS = REPO / "workflows" / "api"
SEARCH, ARW = "6", "5"


def strict(text: str):
    def refuse(token):
        raise ValueError(f"non-finite number {token} in strict JSON")
    return json.loads(text, parse_constant=refuse)


def load(name: str, state: str, **search_inputs) -> dict:
    graph = json.loads((WORKFLOWS / f"{name}.json").read_text())
    graph[ARW]["inputs"]["name"] = state
    graph[SEARCH]["inputs"].update(search_inputs)
    return graph


def fixed_rewards(graph: dict, columns: dict[str, list[float]], aggregator: dict | None = None) -> dict:
    """Replace the verifiers by ones that give ``columns`` (name -> reward per candidate)."""
    ids = []
    for k, (name, values) in enumerate(columns.items()):
        ids.append(f"f{k}")
        graph[f"f{k}"] = {"class_type": "AVITSTest_FixedRewards",
                          "inputs": {"name": name, "values": ",".join(map(str, values))}}
    graph["fset"] = {"class_type": "AVITS_VerifierSet",
                     "inputs": {f"verifiers_{i + 1}": [n, 0] for i, n in enumerate(ids)}}
    graph[SEARCH]["inputs"]["verifiers"] = ["fset", 0]
    if aggregator is not None:
        graph["agg"] = {"class_type": "AVITS_Aggregator", "inputs": aggregator}
        graph[SEARCH]["inputs"]["aggregator"] = ["agg", 0]
    return graph


def report_of(entry: dict, node: str = SEARCH) -> dict:
    return strict(entry["outputs"][node]["avits_report"][0])


def state_path(comfy, state: str) -> Path:
    return comfy.base / "user" / "avits" / "arw" / f"{state}.json"


def arw_file(comfy, state: str) -> dict:
    return strict(state_path(comfy, state).read_text())
