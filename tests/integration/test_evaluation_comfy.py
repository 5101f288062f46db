"""The evaluation's ComfyUI backend against the real server: the shipped ToyAV Best-of-N
workflow queued for each prompt and seed (n = 1 as the baseline, n = 3 with an ARW state shared
across the prompts) gives the same chosen candidates as the in-process evaluation of the same
settings; the gallery clip comes back over /view. Bad input (a server nobody listens on, an
input the workflow lacks, a value the server refuses) is a clear error and no result row."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from comfyctl import REPO, free_port
from comfyui_avits.evaluation import cli
from comfyui_avits.evaluation import config as config_mod
from comfyui_avits.evaluation.comfy_queue import ComfyQueue, WorkflowError
from comfyui_avits.evaluation.prompts import load_prompts
from comfyui_avits.evaluation.results import Results
from comfyui_avits.evaluation.runner import InProcess, run

pytestmark = pytest.mark.integration

STEPS, N = 6, 3
COMMON = """
seeds = [0, 1]
gallery = 1
[prompts]
set = "toyav"
count = 2
[selection]
verifiers = ["toy_text_match", "av_align"]
[metrics]
oracle = true
verifiers = ["toy_text_match"]
"""


def workflow_method(label: str, state: str, n: int, prompt_input: str = "1.prompt") -> str:
    return f"""
[[methods]]
kind = "workflow"
label = "{label}"
workflow = "wf/toyav_best_of_n.json"
search_node = "6"
prompt_inputs = ["{prompt_input}"]
seed_inputs = ["6.seed"]
overrides = {{ "6.n" = {n}, "5.name" = "{state}", "1.steps" = {STEPS}, "6.filename_prefix" = "AVITS/eval_{state}" }}
"""


def comfy_config(tmp: Path, servers: list[str], prompt_input: str = "1.prompt",
                 best_of_n: bool = True) -> Path:
    (tmp / "wf").mkdir(exist_ok=True)
    shutil.copy(REPO / "workflows/api/toyav_best_of_n.json", tmp / "wf")
    tag = uuid.uuid4().hex[:8]
    path = tmp / "comfy.toml"
    path.write_text(f'name = "comfy"\noutput = "out"\n{COMMON}\n[generator]\nkind = "comfyui"\n'
                    f"[comfyui]\nservers = {json.dumps(servers)}\ntimeout_s = 300\n"
                    + workflow_method("naive", f"eval-{tag}-naive", 1, prompt_input)
                    + (workflow_method(f"best_of_n[n={N}]", f"eval-{tag}-bon", N) if best_of_n else ""))
    return path


def inprocess_config(tmp: Path, best_of_n: bool = True) -> Path:
    path = tmp / "inprocess.toml"
    path.write_text(f'name = "inprocess"\noutput = "out-inprocess"\naggregators = ["arw_shared"]\n'
                    f"{COMMON}\n[generator]\nkind = \"toyav\"\nsteps = {STEPS}\nguidance = 3.0\n"
                    'coupling = 0.28\ncaption_noise = 0.5\n[[methods]]\nkind = "naive"\n'
                    + (f'[[methods]]\nkind = "best_of_n"\nn = {N}\n' if best_of_n else ""))
    return path


def evaluate(path: Path) -> Results:
    config = config_mod.load(path)
    prompts = load_prompts(config.prompts)
    backend = ComfyQueue(config) if config.backend == "comfyui" else InProcess(config)
    results = Results(config.output / "results.jsonl", "test")
    run(config, prompts, results, backend)
    return results


def test_queue_matches_inprocess(comfy, tmp_path):
    queued = evaluate(comfy_config(tmp_path, [comfy.url]))
    local = evaluate(inprocess_config(tmp_path))
    by_search = {(r["method"], r["prompt_index"], r["seed"]): r for r in local.in_order()}
    rows = queued.in_order()
    assert len(rows) == len(by_search) == 2 * 2 * 2
    for row in rows:
        want = by_search[(row["method"], row["prompt_index"], row["seed"])]
        assert row["method_kind"] == ("naive" if row["method"] == "naive" else "workflow")
        assert set(row["metrics"]) == {"text_match", "sync_error_s", "toy_text_match"}
        assert row["metrics"] == pytest.approx(want["metrics"], abs=1e-6), row["key"]
        assert row["rewards"] == pytest.approx(want["rewards"], abs=1e-6), row["key"]
        assert (row["nfe"], row["candidates"]) == (want["nfe"], want["candidates"]) == \
            (STEPS * (1 if row["method"] == "naive" else N), 1 if row["method"] == "naive" else N)
        assert row["wall_s"] > 0
    bon = [r for r in rows if r["method"] != "naive"]
    # the workflow's ARW state is shared across the queued prompts, in the sequential order
    assert [r["history_size"] for r in bon] == [N * (i + 1) for i in range(len(bon))]
    for row in bon:
        want = by_search[(row["method"], row["prompt_index"], row["seed"])]
        assert row["history_size"] == want["history_size"]
        assert row["arw_scales"] == pytest.approx(want["arw_scales"], rel=1e-6)
    clips = [r["clips"]["chosen"] for r in rows if r["clips"]["chosen"]]
    assert len(clips) == 2  # the first prompt's first seed, both arms
    for clip in clips:
        data = (queued.path.parent / clip).read_bytes()
        assert data[4:8] == b"ftyp" and len(data) > 1000, clip


def test_two_servers_record_each_search_once(comfy, tmp_path):
    """Two worker threads (the same server listed twice): every search recorded once, each the
    in-process result of its prompt and seed."""
    queued = evaluate(comfy_config(tmp_path, [comfy.url, comfy.url + "/"], best_of_n=False))
    local = {(r["prompt_index"], r["seed"]): r
             for r in evaluate(inprocess_config(tmp_path, best_of_n=False)).in_order()}
    keys = [json.loads(x)["key"] for x in queued.path.read_text().splitlines()[1:]]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == len(local) == 4
    for row in queued.in_order():
        want = local[(row["prompt_index"], row["seed"])]
        assert row["metrics"] == pytest.approx(want["metrics"], abs=1e-6), row["key"]


def results_file(path: Path) -> Path:
    return config_mod.load(path).output / "results.jsonl"


def test_unreachable_server_is_named(comfy, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    path = comfy_config(tmp_path, [comfy.url, dead])
    assert cli.main([str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert dead in err and "does not answer" in err
    assert not results_file(path).exists()


def test_missing_input_is_named(comfy, tmp_path, capsys):
    path = comfy_config(tmp_path, [comfy.url], prompt_input="1.caption")
    assert cli.main([str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'naive'" in err and "node '1'" in err and "'caption'" in err and "prompt_inputs" in err
    assert not results_file(path).exists()


def test_refused_workflow_leaves_no_row(comfy, tmp_path):
    path = comfy_config(tmp_path, [comfy.url])
    path.write_text(path.read_text().replace(f'"1.steps" = {STEPS}', '"1.steps" = -5', 1))
    config = config_mod.load(path)
    results = Results(config.output / "results.jsonl", "test")
    with pytest.raises(WorkflowError, match=r"refused.*node 1 \(AVITS_ToyAVGenerator\)"):
        run(config, load_prompts(config.prompts), results, ComfyQueue(config))
    assert results.rows == {} and len(results.path.read_text().splitlines()) == 1


def agreement_config(tmp: Path, comfy, tiny_files, generator: str = "g") -> Path:
    """The tiny LTX-AV Best-of-4 graph, scored by a tiny VideoReward through the tiny taeltx_2,
    checked against the same seeds scored through the full VAE."""
    from conftest import ltx_files
    from graphs import ltx_search_graph

    graph = ltx_search_graph(ltx_files(tiny_files), "AVITS_BestOfN",
                             state=f"agree-{uuid.uuid4().hex[:8]}")
    graph["tae"] = {"class_type": "VAELoader", "inputs": {"vae_name": "taeltx_2.safetensors"}}
    graph["g"]["inputs"].update(scoring_vae=["tae", 0], max_batch=1)
    graph["vl"] = {"class_type": "AVITS_VideoRewardLoader", "inputs": {"folder": "VideoReward", "dtype": "auto"}}
    graph["v"] = {"class_type": "AVITS_VideoReward",
                  "inputs": {"videoreward": ["vl", 0], "outputs": "ta", "name": "videoreward"}}
    (tmp / "wf").mkdir(exist_ok=True)
    (tmp / "wf" / "ltx.json").write_text(json.dumps(graph))
    path = tmp / "agree.toml"
    path.write_text(f"""name = "agree"
output = "out"
seeds = [0, 1]
bootstrap = 200
[prompts]
set = "toyav"
count = 3
[selection]
verifiers = []
[generator]
kind = "comfyui"
[comfyui]
servers = ["{comfy.url}"]
timeout_s = 300
[[methods]]
kind = "workflow"
label = "tae_vs_vae"
workflow = "wf/ltx.json"
search_node = "s"
prompt_inputs = ["g.prompt"]
seed_inputs = ["s.seed"]
compare_decoders = "{generator}"
overrides = {{ "s.n" = 4 }}
""")
    return path


def test_decoder_agreement_runs_against_the_server(comfy, tiny_files, tmp_path):
    path = agreement_config(tmp_path, comfy, tiny_files)
    assert cli.main([str(path), "--no-progress"]) == 0
    rows = [json.loads(line) for line in results_file(path).read_text().splitlines()][1:]  # header
    assert len(rows) == 3 * 2 and all(r["method_kind"] == "decoder_agreement" for r in rows)
    for r in rows:
        assert r["decoders"] == {"score": "scoring_vae (TAEHV)", "reference": "vae (VideoVAE)"}
        assert set(r["metrics"]) == {"spearman", "top1", "spearman:videoreward_ta"}
        assert r["metrics"]["top1"] in (0.0, 1.0) and r["nfe"] == 2 * 4 * 4
        assert all(v is None or -1 <= v <= 1 for v in r["metrics"].values())
    table = (path.parent / "out" / "agreement.md").read_text()
    assert "| spearman | 3 |" in table and "| top1 | 3 |" in table and "[" in table


def test_decoder_agreement_needs_a_generator_with_a_scoring_vae(comfy, tiny_files, tmp_path, capsys):
    path = agreement_config(tmp_path, comfy, tiny_files, generator="s")
    assert cli.main([str(path), "--no-progress"]) == 2
    assert "compare_decoders" in capsys.readouterr().err and not results_file(path).exists()
