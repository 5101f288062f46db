"""Beyond one server: two real ComfyUI servers each sample half of a ToyAV Best-of-N from their
seeds and AVITS_SelectBest on the first picks the winner one AVITS_BestOfN picks, with the same
scores; an ARW state learned on one server is exported, imported on the other, and the next
prompt there sees the merged history; bad input is refused with nothing saved.

The frames travel between the servers as float tensors (a small node pack this module writes and
loads on both servers, standing in for Distributed Collector's transport, which sends 8-bit
PNGs), so the scores can be compared exactly."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest
import safetensors.torch
import torch

from comfyctl import ComfyServer, ExecutionFailed, QueueRejected
from graphs import WORKFLOWS, load, report_of, state_path

pytestmark = pytest.mark.integration

PACK = '''
import safetensors.torch
import torch
from comfy_api.latest import ComfyExtension, io


class SaveClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSScaleTest_SaveClip", category="testing",
                         inputs=[io.Image.Input("frames"), io.Audio.Input("audio"),
                                 io.String.Input("path")], outputs=[], is_output_node=True)

    @classmethod
    def execute(cls, frames, audio, path):
        safetensors.torch.save_file({"frames": frames.contiguous(),
                                     "audio": audio["waveform"].contiguous(),
                                     "sample_rate": torch.tensor(audio["sample_rate"])}, path)
        return io.NodeOutput()


class LoadClips(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSScaleTest_LoadClips", category="testing",
                         inputs=[io.String.Input("path")],
                         outputs=[io.Image.Output(), io.Audio.Output()])

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")

    @classmethod
    def execute(cls, path):
        t = safetensors.torch.load_file(path)
        return io.NodeOutput(t["frames"], {"waveform": t["audio"],
                                           "sample_rate": int(t["sample_rate"])})


class Extension(ComfyExtension):
    async def get_node_list(self):
        return [SaveClip, LoadClips]


async def comfy_entrypoint():
    return Extension()
'''

SEED, N, FPS = 20, 4, 24.0
PROMPT = json.loads((WORKFLOWS / "toyav_best_of_n.json").read_text())["1"]["inputs"]["prompt"]


@pytest.fixture(scope="module")
def servers(comfy, tmp_path_factory):
    """The session's server (the master) and a second one (a worker), both with the clip pack;
    the second is always stopped."""
    pack = tmp_path_factory.mktemp("pack") / "avits_scaletest"
    pack.mkdir()
    (pack / "__init__.py").write_text(textwrap.dedent(PACK))
    link = comfy.base / "custom_nodes" / "avits_scaletest"
    if not link.exists():
        link.symlink_to(pack)
        comfy.restart()
    worker = ComfyServer(tmp_path_factory.mktemp("comfy-worker"))
    worker.prepare()
    (worker.base / "custom_nodes" / "avits_scaletest").symlink_to(pack)
    worker.start()
    try:
        yield comfy, worker
    finally:
        worker.stop()


def sample_graph(seeds: list[int], out) -> dict:
    """What a worker runs: the ToyAV generator and verifiers of the shipped template, one naive
    sample per seed (a fixed aggregator: workers learn nothing), each clip saved as floats."""
    base = json.loads((WORKFLOWS / "toyav_best_of_n.json").read_text())
    graph = {k: base[k] for k in ("1", "2", "3", "4")}
    graph["agg"] = {"class_type": "AVITS_Aggregator",
                    "inputs": {"mode": "weighted_sum", "weights": "", "statistics": ""}}
    for s in seeds:
        graph[f"n{s}"] = {"class_type": "AVITS_NaiveSample",
                          "inputs": {"generator": ["1", 0], "verifiers": ["4", 0],
                                     "aggregator": ["agg", 0], "seed": s,
                                     "filename_prefix": f"AVITS/naive_{s}"}}
        graph[f"s{s}"] = {"class_type": "AVITSScaleTest_SaveClip",
                          "inputs": {"frames": [f"n{s}", 0], "audio": [f"n{s}", 1],
                                     "path": str(out / f"{s}.safetensors")}}
    return graph


def select_graph(path, state: str, **inputs) -> dict:
    base = json.loads((WORKFLOWS / "toyav_best_of_n.json").read_text())
    graph = {k: base[k] for k in ("2", "3", "4", "5")}
    graph["5"]["inputs"].update(name=state, reset=True)
    graph["load"] = {"class_type": "AVITSScaleTest_LoadClips", "inputs": {"path": str(path)}}
    graph["sel"] = {"class_type": "AVITS_SelectBest",
                    "inputs": {"frames": ["load", 0], "audio": ["load", 1],
                               "frames_per_candidate": 48,
                               "audio_layout": "joined in time (Distributed Collector)",
                               "fps": FPS, "seed": SEED, "seeds": "", "prompt": PROMPT,
                               "verifiers": ["4", 0], "aggregator": ["5", 0],
                               "filename_prefix": f"AVITS/select_{state}", "chunk_size": 8,
                               **inputs}}
    return graph


@pytest.fixture(scope="module")
def collected(servers, tmp_path_factory):
    """Half the seeds sampled on each server, gathered as Distributed Collector gathers them:
    the master's clips, then the worker's; frames one after another, sound joined in time."""
    master, worker = servers
    out = tmp_path_factory.mktemp("clips")
    halves = [list(range(SEED, SEED + N // 2)), list(range(SEED + N // 2, SEED + N))]
    for server, seeds in zip(servers, halves):
        server.run(sample_graph(seeds, out), timeout=300)
    clips = [safetensors.torch.load_file(out / f"{s}.safetensors") for s in range(SEED, SEED + N)]
    joined = {"frames": torch.cat([c["frames"] for c in clips]),
              "audio": torch.cat([c["audio"] for c in clips], -1),
              "sample_rate": clips[0]["sample_rate"]}
    path = out / "collected.safetensors"
    safetensors.torch.save_file(joined, path)
    batch = {**joined, "audio": torch.cat([c["audio"] for c in clips])}
    safetensors.torch.save_file(batch, out / "batch.safetensors")
    return path


def test_select_over_clips_from_two_servers_picks_best_of_ns_winner_with_its_scores(servers, collected):
    master, _ = servers
    entry = master.run(select_graph(collected, "scale-select"), timeout=300)
    selected = report_of(entry, "sel")
    one = load("toyav_best_of_n", "scale-bon", n=N, seed=SEED)
    one["5"]["inputs"]["reset"] = True
    del one["7"]
    best_of_n = report_of(master.run(one, timeout=300))
    assert selected["method"] == "select" and selected["config"]["seeds"] == list(range(SEED, SEED + N))
    assert selected["best"] == best_of_n["best"]
    for got, want in zip(selected["candidates"], best_of_n["candidates"], strict=True):
        assert got["seed"] == want["seed"]
        assert got["rewards"] == pytest.approx(want["rewards"], rel=1e-6, abs=1e-9)
        assert got["score"] == pytest.approx(want["score"], rel=1e-6, abs=1e-9)
    assert selected["aggregator"]["history_size"] == N  # the ARW state learned as in Best-of-N
    winner = next(c for c in best_of_n["candidates"] if c["id"] == best_of_n["best"])
    assert f"seed {winner['seed']}:" in entry["outputs"]["sel"]["text"][0].splitlines()[0]


@pytest.mark.parametrize("inputs, clips, match", [
    ({"frames_per_candidate": 47}, "collected",
     "192 frames are not a whole number of candidates of frames_per_candidate = 47"),
    ({"seeds": "1, 2, 3"}, "collected", "3 seeds \\(1, 2, 3\\) for 4 candidates"),
    ({"audio_layout": "batch [N, C, S]"}, "collected", "an audio batch of 1 waveforms for 4 candidates"),
    ({}, "batch", "audio \\(4, 1, 32000\\) is not 4 clips' sound joined in time"),
])
def test_bad_input_is_a_clear_error_and_nothing_is_saved(servers, collected, inputs, clips, match):
    master, _ = servers
    state = "scale-bad"
    graph = select_graph(collected.with_name(f"{clips}.safetensors"), state, **inputs)
    graph["5"]["inputs"]["reset"] = False
    with pytest.raises(ExecutionFailed, match=match):
        master.run(graph, timeout=300)
    assert not state_path(master, state).exists()
    assert not list((master.base / "output" / "AVITS").glob(f"select_{state}*"))


def learn(server, state: str, seed: int, graph_name: str = "toyav_best_of_n", n: int = 3) -> dict:
    graph = load(graph_name, state, n=n, seed=seed)
    graph["5"]["inputs"]["reset"] = True
    return report_of(server.run(graph, timeout=300))


def test_a_state_exported_on_one_server_and_imported_on_another_is_merged(servers):
    master, worker = servers
    learn(master, "learn-a", 0)
    learn(worker, "learn-b", 100)
    exported = worker.get("/avits/arw/learn-b")
    assert exported["format"] == "avits-arw-state" and exported["version"] == 2
    answer = master.post("/avits/arw/learn-a", exported)
    assert answer["history_size"] == 6
    graph = load("toyav_best_of_n", "learn-a", n=2, seed=7)  # the next prompt sees it
    assert report_of(master.run(graph, timeout=300))["aggregator"]["history_size"] == 8
    with pytest.raises(QueueRejected, match="merged into it before"):
        master.post("/avits/arw/learn-a", exported)

    # the same through the nodes, in a prompt: import, then a search that sees the merged history
    graph = load("toyav_best_of_n", "node-import", n=2, seed=3)
    graph["5"]["inputs"]["reset"] = True
    graph["imp"] = {"class_type": "AVITS_ARWImport",
                    "inputs": {"aggregator": ["5", 0], "state": json.dumps(exported)}}
    graph["6"]["inputs"]["aggregator"] = ["imp", 0]
    graph["7"]["inputs"]["aggregator"] = ["imp", 0]
    graph["exp"] = {"class_type": "AVITS_ARWExport",
                    "inputs": {"aggregator": ["imp", 0], "after": ["6", 3],
                               "filename_prefix": "AVITS/arw_export"}}
    entry = master.run(graph, timeout=300)
    assert report_of(entry)["aggregator"]["history_size"] == 5
    assert json.loads(state_path(master, "node-import").read_text())["state"]["stats"][
        "av_align"]["count"] == 5
    assert list((master.base / "output" / "AVITS").glob("arw_export_*_node-import.json"))


def test_a_state_of_another_verifier_set_is_refused_and_nothing_changes(servers):
    master, worker = servers
    learn(master, "keep", 1)
    before = state_path(master, "keep").read_bytes()
    graph = load("toyav_best_of_n", "text-only", n=2, seed=9)
    graph["5"]["inputs"]["reset"] = True
    graph["6"]["inputs"]["verifiers"] = ["2", 0]  # the text verifier alone
    worker.run(graph, timeout=300)
    with pytest.raises(QueueRejected, match="rewards of other verifiers are on other scales"):
        master.post("/avits/arw/keep", worker.get("/avits/arw/text-only"))
    assert state_path(master, "keep").read_bytes() == before

    graph = load("toyav_best_of_n", "keep", n=2, seed=9)  # the node refuses as the route does
    graph["imp"] = {"class_type": "AVITS_ARWImport",
                    "inputs": {"aggregator": ["5", 0],
                               "state": json.dumps(worker.get("/avits/arw/text-only"))}}
    graph["6"]["inputs"]["aggregator"] = ["imp", 0]
    with pytest.raises(ExecutionFailed, match="nothing was merged"):
        master.run(copy.deepcopy(graph), timeout=300)
    assert state_path(master, "keep").read_bytes() == before
