"""The evaluation command on the in-process backend: its config checks, prompt files, the
results file, and a run killed in the middle that resumes to the same tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comfyui_avits.evaluation import config as C
from comfyui_avits.evaluation.prompts import load_prompts
from comfyui_avits.evaluation.results import Results, ResultsError

QUICK = """
name = "quick"
output = "out"
seeds = [0, 1]
aggregators = ["arw_shared", "weighted_sum"]
gallery = 1
bootstrap = 200

[prompts]
set = "toyav"
count = 3

[generator]
kind = "toyav"
steps = 10

[selection]
verifiers = ["toy_text_match", "av_align"]

[metrics]
oracle = true

[[methods]]
kind = "naive"

[[methods]]
kind = "best_of_n"
n = [2, 4]

[[methods]]
kind = "evosearch"
evolution_steps = [0, 5]
population_sizes = [3, 3, 3]
elites = 1
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('name = "quick"', 'name = "quick"\nnmae = 1'), r"unknown key 'nmae' in \[top level\]"),
    (lambda t: t.replace("count = 3", "count = 3\ncolumn_name = 'x'"), r"unknown key 'column_name' in \[prompts\]"),
    (lambda t: t.replace("elites = 1", "elites = 1\nelite = 2"), r"unknown key 'elite' in \[methods\[2\]\]"),
    (lambda t: t.replace('kind = "naive"', 'kind = "naïve"'), r"methods\[0\].kind must be one of"),
    (lambda t: t.replace("seeds = [0, 1]", "seeds = [0, -1]"), "seeds must be a list of non-negative"),
    (lambda t: t.replace('"weighted_sum"]', '"weighted_summ"]'), r"aggregator 'weighted_summ' unknown"),
    (lambda t: t.replace("[[methods]]\nkind = \"naive\"\n", ""), "needs the baseline"),
    (lambda t: t.replace("n = [2, 4]", "n = [2, 0]"), r"methods\[1\].n must be a positive integer"),
])
def test_a_bad_config_names_the_key(tmp_path, edit, message):
    with pytest.raises(C.ConfigError, match=message):
        C.load(write(tmp_path, edit(QUICK)))


def test_prompt_files_and_their_errors(tmp_path):
    spec = lambda name, **kw: C.Prompts(file=tmp_path / name, **kw)  # noqa: E731
    (tmp_path / "p.txt").write_text("a red ball bouncing\n\n  a blue cube bouncing  \n")
    assert load_prompts(spec("p.txt")) == ["a red ball bouncing", "a blue cube bouncing"]
    (tmp_path / "p.csv").write_text("id,caption\n1,a dog barking\n2,\"rain, thunder\"\n")
    assert load_prompts(spec("p.csv", column="caption")) == ["a dog barking", "rain, thunder"]
    with pytest.raises(C.ConfigError, match="no column 'prompt'.*'id', 'caption'"):
        load_prompts(spec("p.csv"))
    (tmp_path / "p.jsonl").write_text('{"text": "a bell"}\n{"text": "a drum"}\n')
    assert load_prompts(spec("p.jsonl", column="text", count=1)) == ["a bell"]
    with pytest.raises(C.ConfigError, match="missing.txt not found"):
        load_prompts(spec("missing.txt"))
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(C.ConfigError, match="holds no prompts"):
        load_prompts(spec("empty.txt"))


def test_a_results_file_of_another_config_is_refused_and_a_cut_line_dropped(tmp_path):
    results = Results(tmp_path / "r.jsonl", "aaaa")
    results.add({"key": "k1", "x": 1})
    with open(tmp_path / "r.jsonl", "a") as f:
        f.write('{"key": "k2", "x"')  # killed in the middle of a line
    again = Results(tmp_path / "r.jsonl", "aaaa")
    assert list(again.rows) == ["k1"]
    again.add({"key": "k2", "x": 2})
    assert [json.loads(x)["key"] for x in (tmp_path / "r.jsonl").read_text().splitlines()[1:]] == ["k1", "k2"]
    with pytest.raises(ResultsError, match="written by another config"):
        Results(tmp_path / "r.jsonl", "bbbb")


def evaluate(config: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "comfyui_avits.evaluate", str(config), "--no-progress"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_a_run_killed_mid_way_resumes_to_the_same_tables(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir(), cut.mkdir()
    assert evaluate(write(whole, QUICK)).wait(timeout=600) == 0
    proc = evaluate(write(cut, QUICK))
    rows = cut / "out" / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not rows.exists() or len(rows.read_text().splitlines()) < 12):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(rows.read_text().splitlines()) - 1
    total = 3 * 2 * (1 + 2 * 2 + 2)  # prompts x seeds x arms (naive, 2 N and EvoSearch x 2 aggregators)
    assert 0 < done < total, "killed in the middle"
    resumed = evaluate(write(cut, QUICK))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    assert f"{total - done} searches run" in out.decode()
    for name in ("means.csv", "improvement.csv", "comparisons.csv"):
        assert (cut / "out" / name).read_text() == (whole / "out" / name).read_text(), name
    strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "wall_s"}  # noqa: E731
                       for x in p.read_text().splitlines()[1:]]
    assert sorted(strip(rows), key=lambda r: r["key"]) == sorted(strip(whole / "out" / "results.jsonl"),
                                                                 key=lambda r: r["key"])


def test_the_shared_arw_sees_every_candidate_and_per_prompt_arms_do_not(tmp_path):
    config = write(tmp_path, QUICK)
    assert evaluate(config).wait(timeout=600) == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()[1:]]
    for arm in {r["arm"] for r in rows if r["aggregator"] == "arw_shared"}:
        mine = [r for r in rows if r["arm"] == arm]
        assert mine[-1]["history_size"] == sum(r["candidates"] for r in mine)
    assert all(r["history_size"] == 0 for r in rows if r["aggregator"] == "weighted_sum")
    assert (tmp_path / "out" / "tables.md").read_text().count("naive") >= 1
    assert (tmp_path / "out" / "clips" / "p0000_s0_naive.mp4").stat().st_size > 1000


SMALL = QUICK.replace("n = [2, 4]", "n = [2]").replace("count = 3", "count = 2").replace(
    'aggregators = ["arw_shared", "weighted_sum"]', 'aggregators = ["weighted_sum"]')


def header(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[0])["header"]


def test_results_of_another_code_version_are_refused_and_fresh_recomputes_them(tmp_path):
    from comfyui_avits.evaluation import cli
    from comfyui_avits.evaluation.results import code_version

    config = write(tmp_path, SMALL)
    rows = tmp_path / "out" / "results.jsonl"
    assert cli.main([str(config), "--no-progress"]) == 0
    assert header(rows) == {"config": header(rows)["config"], "code": code_version()}
    total = len(rows.read_text().splitlines()) - 1
    lines = rows.read_text().splitlines()  # as if an older version of the code had written them
    lines[0] = json.dumps({"header": {**header(rows), "code": "0" * 16}})
    stale = "\n".join(lines) + "\n"
    rows.write_text(stale)
    assert cli.main([str(config), "--no-progress"]) == 2
    assert rows.read_text() == stale  # refused, nothing resumed or lost
    assert cli.main([str(config), "--no-progress", "--fresh"]) == 0
    assert header(rows)["code"] == code_version() and len(rows.read_text().splitlines()) - 1 == total
    assert (tmp_path / "out" / "results.jsonl.previous").read_text() == stale


def test_fresh_runs_every_search_again(tmp_path, capsys):
    from comfyui_avits.evaluation import cli

    config = write(tmp_path, SMALL)
    assert cli.main([str(config), "--no-progress"]) == 0
    total = len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) - 1
    capsys.readouterr()
    assert cli.main([str(config), "--no-progress"]) == 0
    assert "0 searches run" in capsys.readouterr().out
    assert cli.main([str(config), "--no-progress", "--fresh"]) == 0
    assert f"{total} searches run" in capsys.readouterr().out


def test_the_code_version_follows_the_code(tmp_path):
    import shutil

    from comfyui_avits.evaluation.results import PACK, code_version

    copy = tmp_path / "pack"
    for package in ("core", "search", "generators", "verifiers", "evaluation"):
        shutil.copytree(PACK / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert code_version(copy) == code_version()
    (copy / "search" / "engine.py").write_text((copy / "search" / "engine.py").read_text() + "\n# changed\n")
    assert code_version(copy) != code_version()


NAIVE_ONLY = """
name = "naive"
output = "out"
seeds = [0]
gallery = 0
bootstrap = 50
[prompts]
set = "toyav_continuous"
count = 6
[generator]
kind = "toyav"
world = "continuous"
steps = 10
[selection]
verifiers = ["toy_text_match"]
[[methods]]
kind = "naive"
"""


@pytest.mark.parametrize("own", [False, True])
def test_with_seed_per_prompt_each_prompt_draws_its_own_baseline(tmp_path, own):
    """With seed_per_prompt each prompt's naive clip comes from seeds of its own, derived from the
    prompt and the seed (recorded as ``draw``), so no single lucky seed sets every prompt's
    baseline; without it every prompt uses the seed itself."""
    from comfyui_avits.evaluation import cli
    from comfyui_avits.evaluation.runner import prompt_seed

    config = write(tmp_path, ("seed_per_prompt = true\n" if own else "") + NAIVE_ONLY)
    assert cli.main([str(config), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()[1:]]
    if own:
        assert [r["draw"] for r in rows] == [prompt_seed(r["prompt"], 0) for r in rows]
        assert len({r["draw"] for r in rows}) == 6
    else:
        assert all(r["draw"] == 0 for r in rows)


def test_a_draft_method_names_what_its_draft_changes_and_runs_with_that_draft(tmp_path):
    """draft = { steps = 4 }: the draft is the config's generator with 4 steps; the arm's
    label says so; a method without a draft refuses the key."""
    from comfyui_avits.evaluation.runner import InProcess, tasks
    from comfyui_avits.search.aggregation import ARW

    text = QUICK + '\n[[methods]]\nkind = "draft_then_commit"\nn = 4\ncommit = 1\ndraft = { steps = 4 }\n'
    config = C.load(write(tmp_path, text))
    method = config.methods[-1]
    assert method.draft == {"steps": 4} and method.label == "draft_then_commit[n=4|commit=1|draft.steps=4]"
    task = next(t for t in tasks(config, ["a red ball bouncing, bell sound"]) if t.method is method)
    row = InProcess(config).run(task, ARW(), tmp_path)
    assert row["nfe"] == 4 * 4 + 1 * 10 and row["candidates"] == 4
    with pytest.raises(C.ConfigError, match=r"unknown key 'draft'"):
        C.load(write(tmp_path, QUICK.replace("elites = 1", "elites = 1\ndraft = { steps = 4 }")))
