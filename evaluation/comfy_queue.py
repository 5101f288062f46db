"""The ComfyUI backend: each search is a user's API-format workflow queued on a running server
(POST /prompt, then GET /history until it ends), its row read off the search node's report.
Everything that can be checked is checked before any work: that every server answers, and that
every node and input the config names exists in its workflow. Several servers run one search
each at a time, handed out in task order; rows are recorded as they finish. Standard library
only (urllib)."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from . import agreement
from .config import ConfigError, EvalConfig, Method
from .results import Results
from .runner import Progress, Task, _row, clip_name, tasks, wants_clip

POLL_S = 0.1


class WorkflowError(RuntimeError):
    """A queued workflow was refused or failed on the server (carries the server's message)."""


def _node_input(ref: Any, graph: dict, method: Method, key: str) -> tuple[str, str]:
    """``"node.input"`` split and checked against the workflow."""
    where = f"method {method.label!r} ({key})"
    if not isinstance(ref, str) or "." not in ref:
        raise ConfigError(f"{where}: {ref!r} must be 'node_id.input_name'")
    node, name = ref.split(".", 1)
    if node not in graph:
        raise ConfigError(f"{where}: the workflow {method.options['workflow']} has no node {node!r}")
    if name not in graph[node].get("inputs", {}):
        raise ConfigError(f"{where}: node {node!r} ({graph[node].get('class_type')}) of "
                          f"{method.options['workflow']} has no input {name!r}; it has "
                          f"{', '.join(sorted(graph[node].get('inputs', {})))}")
    return node, name


class Workflow:
    """One workflow method: its API graph and where the prompt, seed and overrides go."""

    def __init__(self, config: EvalConfig, method: Method) -> None:
        opts = method.options
        path = config.source.parent / opts["workflow"]
        if not path.is_file():
            raise ConfigError(f"method {method.label!r}: workflow file {path} not found")
        try:
            graph = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"method {method.label!r}: {path} is not valid JSON: {e}") from None
        if not isinstance(graph, dict) or not all(isinstance(n, dict) and "class_type" in n
                                                  for n in graph.values()):
            raise ConfigError(f"method {method.label!r}: {path} is not an API-format workflow "
                              "(in ComfyUI: Workflow > Export (API))")
        self.graph, self.method = graph, method
        self.search_node = str(opts["search_node"])
        if self.search_node not in graph:
            raise ConfigError(f"method {method.label!r} (search_node): the workflow "
                              f"{opts['workflow']} has no node {self.search_node!r}")
        self.prompt_inputs = [_node_input(r, graph, method, "prompt_inputs") for r in opts["prompt_inputs"]]
        self.seed_inputs = [_node_input(r, graph, method, "seed_inputs")
                            for r in opts.get("seed_inputs", [])]
        self.overrides = [(_node_input(r, graph, method, "overrides"), v)
                          for r, v in opts.get("overrides", {}).items()]
        self.generator = opts.get("compare_decoders")
        if self.generator is not None:
            node = graph.get(self.generator, {})
            if node.get("class_type") != "AVITS_ComfyAVGenerator" or "scoring_vae" not in node.get("inputs", {}):
                raise ConfigError(f"method {method.label!r} (compare_decoders): node "
                                  f"{self.generator!r} of {opts['workflow']} must be an "
                                  "AVITS_ComfyAVGenerator with a scoring_vae connected")

    def full_decoder(self, graph: dict) -> dict:
        """The same graph with the generator's scoring VAE unplugged: scored in full."""
        g = copy.deepcopy(graph)
        inputs = g[self.generator]["inputs"]
        inputs.pop("scoring_vae")
        inputs["winner_decoder"] = "vae"
        return g

    def graph_for(self, task: Task) -> dict:
        """A copy of the graph with the overrides, the task's prompt and its seed set."""
        g = copy.deepcopy(self.graph)
        for (node, name), value in self.overrides:
            g[node]["inputs"][name] = value
        for node, name in self.prompt_inputs:
            g[node]["inputs"][name] = task.prompt
        for node, name in self.seed_inputs:
            g[node]["inputs"][name] = task.draw
        return g


class Server:
    """A ComfyUI server's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex

    def _open(self, path: str, data: bytes | None = None, timeout: float = 30) -> bytes:
        """The answer's body; HTTPError for an error status, ConnectionError (naming the
        server) when it cannot be reached."""
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as e:
            raise ConnectionError(f"ComfyUI server {self.url} does not answer "
                                  f"{'POST' if data else 'GET'} {path.split('?')[0]} "
                                  f"({getattr(e, 'reason', e)})") from None

    def check(self) -> None:
        try:
            self._open("/system_stats", timeout=10)
        except urllib.error.HTTPError as e:
            raise ConnectionError(f"{self.url} is not a ComfyUI server (GET /system_stats: HTTP "
                                  f"{e.code})") from None
        except ConnectionError as e:
            raise ConnectionError(f"{e}; start it or fix comfyui.servers") from None

    def queue(self, graph: dict) -> str:
        body = json.dumps({"prompt": graph, "client_id": self.client_id}).encode()
        try:
            answer = json.loads(self._open("/prompt", body))
        except urllib.error.HTTPError as e:
            raise WorkflowError(f"{self.url} refused the workflow (HTTP {e.code}): "
                                f"{_message(e.read())}") from None
        if answer.get("node_errors"):
            raise WorkflowError(f"{self.url} refused the workflow: {_message(json.dumps(answer))}")
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float) -> dict:
        """The history entry of a finished prompt; WorkflowError with the server's message if it
        failed, TimeoutError if it has not ended in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            entry = json.loads(self._open(f"/history/{prompt_id}")).get(prompt_id)
            status = (entry or {}).get("status", {})
            if status.get("completed") is not None:
                if status.get("status_str") == "error":
                    err = next((m[1] for m in status.get("messages", [])
                                if m[0] in ("execution_error", "execution_interrupted")), {})
                    raise WorkflowError(
                        f"{self.url}: node {err.get('node_id')} ({err.get('node_type')}) failed: "
                        f"{err.get('exception_message', 'interrupted')}".rstrip())
                return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}: prompt {prompt_id} did not finish within "
                                   f"{timeout:g} s (comfyui.timeout_s)")
            time.sleep(POLL_S)

    def download(self, filename: str, subfolder: str, dest: Path) -> None:
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": "output"})
        try:
            data = self._open(f"/view?{query}", timeout=120)
        except urllib.error.HTTPError as e:
            raise WorkflowError(f"{self.url}: GET /view of the saved clip {subfolder}/{filename}: "
                                f"HTTP {e.code}") from None
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def _message(body: bytes | str) -> str:
    """The useful part of a ComfyUI error answer: its error and each node's errors."""
    try:
        answer = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return str(body)[:2000]
    parts = []
    error = answer.get("error")
    if isinstance(error, dict):
        parts.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    for node, info in (answer.get("node_errors") or {}).items():
        for e in info.get("errors", []):
            parts.append(f"node {node} ({info.get('class_type')}): {e.get('message')} {e.get('details', '')}".strip())
    return "; ".join(parts) or json.dumps(answer)[:2000]


class ComfyQueue:
    """Runs each task's workflow on the servers of ``config.comfyui``."""

    def __init__(self, config: EvalConfig) -> None:
        if config.comfyui is None:
            raise ConfigError("generator.kind = 'comfyui' needs [comfyui] with servers = [...]")
        self.config = config
        self.workflows = {m.label: Workflow(config, m) for m in config.methods}
        self.servers = [Server(u) for u in config.comfyui.servers]
        for s in self.servers:
            s.check()

    def run(self, task: Task, aggregator, out_dir: Path, server: Server | None = None) -> dict[str, Any]:
        """One search on ``server`` (the first by default); the workflow carries its own
        aggregator, so ``aggregator`` is unused."""
        server = server or self.servers[0]
        wf = self.workflows[task.method.label]
        graph = wf.graph_for(task)
        report = self._report(server, wf, graph, task)
        if wf.generator is not None:
            return self._agreement(task, report, self._report(server, wf, wf.full_decoder(graph), task))
        return self._row(task, report, graph, wf, server, out_dir)

    def _report(self, server: Server, wf: Workflow, graph: dict, task: Task) -> dict:
        entry = server.wait(server.queue(graph), self.config.comfyui.timeout_s)
        try:
            return json.loads(entry["outputs"][wf.search_node]["avits_report"][0])
        except (KeyError, IndexError, json.JSONDecodeError):
            raise WorkflowError(f"{server.url}: node {wf.search_node} (search_node of "
                                f"{task.method.label!r}) left no avits_report; is it a search "
                                "node?") from None

    def _agreement(self, task: Task, cheap: dict, full: dict) -> dict[str, Any]:
        """A decoder-agreement row: the two runs compared candidate by candidate."""
        decoders = (cheap["config"].get("decoders", {}).get("score", ""),
                    full["config"].get("decoders", {}).get("score", ""))
        if not decoders[0].startswith("scoring_vae") or not decoders[1].startswith("vae"):
            raise WorkflowError(f"{task.method.label!r}: expected scores from the scoring VAE, "
                                f"then the full VAE; the reports name {decoders}")
        try:
            metrics = agreement.compare(cheap, full)
        except ValueError as e:
            raise WorkflowError(f"{task.method.label!r}: {e}") from None
        wall = sum(r.get("timings", {}).get("total", 0.0) for r in (cheap, full))
        row = _row(task, self.config, metrics, cheap["nfe"] + full["nfe"], wall,
                   len(cheap["candidates"]), {}, None, None)
        row["decoders"] = {"score": decoders[0], "reference": decoders[1]}
        return row

    def _row(self, task: Task, report: dict, graph: dict, wf: Workflow, server: Server,
             out_dir: Path) -> dict[str, Any]:
        best = next(c for c in report["candidates"] if c["id"] == report["best"])
        metrics = dict(best.get("oracle") or {}) if self.config.metrics_oracle else {}
        missing = [n for n in self.config.metrics_verifiers if n not in best["rewards"]]
        if missing:
            raise WorkflowError(f"metrics.verifiers names {missing}, but the search node of "
                                f"{task.method.label!r} reports the rewards {sorted(best['rewards'])}")
        metrics.update({n: float(best["rewards"][n]) for n in self.config.metrics_verifiers})
        timings = report.get("timings", {})
        wall = timings.get("total", 0.0) - timings.get("oracle", 0.0)
        clip = None
        if wants_clip(self.config, task):
            clip = self._fetch_clip(task, report, graph, wf, server, out_dir)
        row = _row(task, self.config, metrics, report["nfe"], wall, len(report["candidates"]),
                   best["rewards"], None, clip)
        agg = report.get("aggregator", {})
        row.update(arw_scales=agg.get("sigmas"), history_size=agg.get("history_size"))
        return row

    def _fetch_clip(self, task: Task, report: dict, graph: dict, wf: Workflow, server: Server,
                    out_dir: Path) -> str | None:
        """The winner's mp4 the search node saved, downloaded over GET /view; its subfolder of
        the output folder is the folder part of the node's filename_prefix."""
        video = report.get("files", {}).get("video")
        prefix = graph[wf.search_node]["inputs"].get("filename_prefix")
        if not video or not isinstance(prefix, str):
            return None
        subfolder = os.path.dirname(os.path.normpath(prefix))
        name = clip_name(task.prompt_index, task.seed, task.arm)
        server.download(Path(video).name, subfolder, out_dir / name)
        return name

    def run_all(self, config: EvalConfig, prompts: list[str], results: Results,
                progress: Progress | None = None) -> None:
        """Every task not yet in ``results``: one thread per server, tasks handed out in order,
        rows appended under a lock as they finish. After a failure nothing new starts; the
        searches running finish and are recorded, then the first error is raised."""
        todo = iter([t for t in tasks(config, prompts) if t.key not in results])
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(server: Server) -> None:
            while True:
                with lock:
                    task = None if errors else next(todo, None)
                if task is None:
                    return
                try:
                    row = self.run(task, None, config.output, server)
                except BaseException as e:  # noqa: BLE001 - handed to the caller below
                    with lock:
                        errors.append(e)
                    return
                with lock:
                    results.add(row)
                    if progress is not None:
                        progress(1)

        threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in self.servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
