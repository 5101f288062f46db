"""A queued prompt is a transaction over the shared ARW state: whatever makes a prompt fail
(its own inputs, a verifier, a later node, an interrupt, a kill inside the write) leaves the
state file byte-identical, and every value that reaches the state is checked first."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from comfyctl import ExecutionFailed
from graphs import SEARCH, arw_file, load, report_of, state_path

pytestmark = pytest.mark.integration


def seeded(comfy, state: str, n: int = 2) -> bytes:
    """A state with n rewards per verifier; returns its file's bytes."""
    graph = load("toyav_best_of_n", state, n=n)
    graph["5"]["inputs"]["reset"] = True
    comfy.run(graph)
    return state_path(comfy, state).read_bytes()


def failure(comfy, graph, match: str, **kwargs) -> dict:
    with pytest.raises(ExecutionFailed, match=match) as err:
        comfy.run(graph, **kwargs)
    return err.value.details


# ---- weights and verifier sets, keyed by name ---------------------------------------------

def test_a_reordered_verifier_set_keeps_each_verifiers_weight(comfy):
    state = "reorder"
    seeded(comfy, state, n=4)
    results = []
    for order, weights in ((("2", "3"), "0.2, 0.8"), (("3", "2"), "0.8, 0.2"),
                           (("3", "2"), "av_align=0.8, toy_text_match=0.2")):
        graph = load("toyav_best_of_n", state, n=4, seed=5)
        graph["4"]["inputs"] = {"verifiers.verifier0": [order[0], 0], "verifiers.verifier1": [order[1], 0]}
        graph["5"]["inputs"]["weights"] = weights
        report = report_of(comfy.run(graph))
        sig = report["aggregator"]["sigmas"]
        w = {"toy_text_match": 0.2, "av_align": 0.8}  # what the user meant every time
        for c in report["candidates"]:
            expect = sum(w[k] * r / (sig[k] + 1e-6) for k, r in c["rewards"].items())
            assert c["score"] == pytest.approx(expect, rel=1e-9)
        results.append(report)
    assert arw_file(comfy, state)["state"]["weights"] == {"toy_text_match": 0.2, "av_align": 0.8}


def test_a_state_learned_from_another_verifier_set_refuses_before_any_work(comfy):
    state = "other-set"
    before = seeded(comfy, state)
    graph = load("toyav_best_of_n", state, n=2)
    graph["6"]["inputs"]["verifiers"] = ["2", 0]  # the text verifier alone
    details = failure(comfy, graph, r"learned from the rewards \['av_align', 'toy_text_match'\], "
                                    r"this search gives \['toy_text_match'\]: reset the state or "
                                    "use another state name")
    assert "progress" not in json.dumps(details["status"]["messages"])
    assert state_path(comfy, state).read_bytes() == before


def test_a_reward_from_another_verifier_under_the_same_name_is_refused(comfy):
    state = "identity"
    before = seeded(comfy, state)
    graph = load("toyav_best_of_n", state, n=2)  # swap the two verifiers' names
    graph["2"]["inputs"]["name"], graph["3"]["inputs"]["name"] = "av_align", "toy_text_match"
    failure(comfy, graph, "'av_align' was learned from av_align:AVAlign, this search uses "
                          "av_align:ToyTextMatch.*reset the state or use another state name")
    assert state_path(comfy, state).read_bytes() == before


def test_two_arw_state_nodes_with_one_name_and_different_settings_fail(comfy):
    graph = load("toyav_best_of_n", "twice", n=2)
    graph["5b"] = json.loads(json.dumps(graph["5"]))
    graph["5b"]["inputs"]["lr"] = 0.2
    graph["6b"] = json.loads(json.dumps(graph["6"]))
    graph["6b"]["inputs"].update(aggregator=["5b", 0], filename_prefix="AVITS/twice-b")
    failure(comfy, graph, "two AVITS ARW State nodes in this prompt name the state 'twice' "
                          "with different settings")
    assert not state_path(comfy, "twice").exists()
    graph["5b"]["inputs"]["lr"] = graph["5"]["inputs"]["lr"]  # the same settings: one shared copy
    entry = comfy.run(graph)
    sizes = sorted(report_of(entry, n)["aggregator"]["history_size"] for n in ("6", "6b"))
    assert sizes == [2, 4] and arw_file(comfy, "twice")["state"]["stats"]["av_align"]["count"] == 4


# ---- non-finite and out-of-range values -----------------------------------------------------

@pytest.mark.parametrize("inputs,match", [
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"weights": "nan, 1"}, "must be a finite number"),
    ({"weights": "toy_text_match=1e400, av_align=1"}, "must be a finite number"),
    ({"window": 1}, "window .* must lie in \\[2,"),
    ({"reset": "false"}, "reset must be true or false .a JSON boolean., got 'false'"),
    ({"reset": 0}, "reset must be true or false .a JSON boolean., got 0"),
])
def test_bad_arw_settings_from_the_api_are_refused_and_change_nothing(comfy, inputs, match):
    state = "bad-settings"
    before = seeded(comfy, state)
    graph = load("toyav_best_of_n", state, n=2)
    graph["5"]["inputs"].update(inputs)
    details = failure(comfy, graph, match)
    error = next(m[1] for m in details["status"]["messages"] if m[0] == "execution_error")
    assert error["node_type"] == "AVITS_ARWState"
    assert state_path(comfy, state).read_bytes() == before


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace('"lr": 0.05', '"lr": NaN'), "non-finite number .NaN."),
    (lambda t: t.replace('"count": 2', '"count": Infinity', 1), "non-finite number .Infinity."),
    (lambda t: json.dumps({**json.loads(t), "state": "abc"}), "has no valid 'state'"),
    (lambda t: _edit(t, lambda s: s["optimizer_state"].update(exp_avg={"av_align": 0.0})),
     "exp_avg must give a number for each"),
    (lambda t: _edit(t, lambda s: s["log_var"].update(av_align=5000)), r"log_var\['av_align'\] must lie"),
])
def test_a_bad_state_file_is_our_error_with_the_reset_hint_and_is_kept(comfy, edit, match):
    state = "bad-file"
    seeded(comfy, state)
    path = state_path(comfy, state)
    path.write_text(edit(path.read_text()))
    content = path.read_bytes()
    failure(comfy, load("toyav_best_of_n", state, n=2), match + ".*reset the state to start afresh")
    assert path.read_bytes() == content
    graph = load("toyav_best_of_n", state, n=2)
    graph["5"]["inputs"]["reset"] = True
    comfy.run(graph)
    assert any(p.read_bytes() == content for p in path.parent.glob(f"{state}.json.bak-*"))


def _edit(text: str, fn) -> str:
    data = json.loads(text)
    fn(data["state"])
    return json.dumps(data)


# ---- a prompt that fails changes nothing ----------------------------------------------------

@pytest.mark.parametrize("how", ["filename_prefix", "weights", "nan_verifier", "later_node"])
def test_a_failed_prompt_leaves_the_state_file_byte_identical(comfy, how):
    state = f"failed-{how}"
    before = seeded(comfy, state)
    graph = load("toyav_evosearch", state)
    if how == "filename_prefix":  # rejected by ComfyUI after the whole search
        graph[SEARCH]["inputs"]["filename_prefix"] = "../../outside"
        match = "outside the output folder"
    elif how == "weights":
        graph["5"]["inputs"]["weights"] = "toy_text_match=1, sync=1"
        match = "the weights name"
    elif how == "nan_verifier":
        graph["9"] = {"class_type": "AVITSTest_NaNVerifier", "inputs": {}}
        graph["4"]["inputs"]["verifiers.verifier2"] = ["9", 0]
        match = "verifier 'broken' returned a non-finite reward"
        graph["5"]["inputs"]["reset"] = True
    else:  # the search succeeds, a node after it fails
        graph["8"] = {"class_type": "AVITS_SaveReport",
                      "inputs": {"report": [SEARCH, 3], "filename_prefix": "../../outside"}}
        match = "outside the output folder"
    failure(comfy, graph, match)
    assert state_path(comfy, state).read_bytes() == before
    assert not list(state_path(comfy, state).parent.glob(f"{state}.json.*"))
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=2, seed=7)))
    assert report["aggregator"]["history_size"] == 4  # built on the untouched state


def test_an_interrupt_leaves_the_state_file_byte_identical_and_the_queue_working(comfy):
    state = "interrupted"
    before = seeded(comfy, state)
    graph = load("toyav_evosearch", state, population_sizes="16, 16, 16", elites=2, chunk_size=4)
    seen, sent = [], []

    def on_progress(data):  # in thousandths of the search's time
        seen.append(data["value"])
        if data["value"] > 550 and not sent:  # the first generation is about 40 % of it
            sent.append(comfy.post("/interrupt", {}))

    details = failure(comfy, graph, "interrupted", timeout=300, on_progress=on_progress)
    assert "execution_interrupted" in [m[0] for m in details["status"]["messages"]]
    assert sent and max(seen) < 1000, "stopped before the end"
    assert state_path(comfy, state).read_bytes() == before
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=2, seed=3)))
    assert report["aggregator"]["history_size"] == 4


def test_a_server_killed_inside_the_write_keeps_the_previous_state(comfy):
    state = "killed"
    before = seeded(comfy, state)
    flag = comfy.base / "in-write.flag"
    graph = load("toyav_best_of_n", state, n=3)
    graph["p"] = {"class_type": "AVITSTest_PauseInWrite", "inputs": {"flag": str(flag)}}
    comfy.queue(graph)
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert time.monotonic() < deadline, "the prompt never reached the state write"
        time.sleep(0.05)
    assert os.path.exists(flag.read_text())  # the new state is on disk beside the old one
    os.killpg(comfy.proc.pid, signal.SIGKILL)  # now: between the write and the rename
    comfy.proc.wait()
    comfy.proc = None
    comfy.start()
    assert state_path(comfy, state).read_bytes() == before
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=2)))
    assert report["aggregator"]["history_size"] == 4


# ---- the file on disk is the truth -----------------------------------------------------------

def test_a_state_file_restored_on_disk_is_what_the_next_prompt_builds_on(comfy):
    state = "restored"
    backup = seeded(comfy, state)
    comfy.run(load("toyav_best_of_n", state, n=3, seed=1))
    assert arw_file(comfy, state)["state"]["stats"]["av_align"]["count"] == 5
    state_path(comfy, state).write_bytes(backup)  # the user restores the earlier file
    report = report_of(comfy.run(load("toyav_best_of_n", state, n=3, seed=2)))
    assert report["aggregator"]["history_size"] == 2 + 3


def test_resets_within_one_second_keep_every_old_file(comfy):
    state = "resets"
    seeded(comfy, state)
    graph = {"1": {"class_type": "AVITS_ARWState",
                   "inputs": {"name": state, "weights": "", "optimizer": "adam", "lr": 0.05,
                              "iterations": 50, "window": 0, "reset": True}},
             "2": {"class_type": "AVITS_ARWInspect", "inputs": {"aggregator": ["1", 0]}}}
    contents = []
    for _ in range(3):  # quick prompts: several resets fall within one second
        contents.append(state_path(comfy, state).read_bytes())
        comfy.run(graph)
    backups = sorted(state_path(comfy, state).parent.glob(f"{state}.json.bak-*"))
    assert len(backups) == 3
    assert sorted(b.read_bytes() for b in backups) == sorted(contents)
