"""Merging ARW states that learned apart: the statistics of one state that saw every reward, the
scales of one more observed batch, and refusals that change nothing."""

from __future__ import annotations

import json

import pytest
import torch

from comfyui_avits.search.arw_merge import merge, read_export
from comfyui_avits.search.arw_state import ARWSettings, ARWStateError, ARWStore

IDS = {"vr": "vr:VideoReward", "js": "js:JavisScore"}
G = torch.Generator().manual_seed(0)
BATCHES = [{"vr": torch.randn(n, generator=G, dtype=torch.float64) * 3 + 1,
            "js": torch.rand(n, generator=G, dtype=torch.float64) * 0.2} for n in (4, 3, 5, 2, 6)]


def learned(store: ARWStore, name: str, batches, ids=IDS, **settings):
    shared = store.open(name, ARWSettings(**settings))
    shared.bind(ids)
    for b in batches:
        shared.arw.observe(b)
        shared.after_observe()
    return shared


def exported(shared) -> bytes:
    return json.dumps(shared.payload()).encode()


def test_two_states_learned_in_parallel_merge_to_the_statistics_of_one_that_saw_every_reward(tmp_path):
    store = ARWStore(tmp_path)
    one = learned(store, "one", BATCHES)
    a, b = learned(store, "a", BATCHES[:2]), learned(store, "b", BATCHES[2:])
    merge(a, read_export(exported(b), "b.json"))
    assert a.arw.history_size == one.arw.history_size == 20
    for k in IDS:
        got, want = a.arw.state_dict()["stats"][k], one.arw.state_dict()["stats"][k]
        assert got["count"] == want["count"]
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12, abs=1e-12)
        assert got["m2"] == pytest.approx(want["m2"], rel=1e-12)
    # the other order: the same statistics, each side keeping its own optimizer path
    b2 = learned(store, "b", BATCHES[2:])
    merge(b2, read_export(exported(learned(store, "a", BATCHES[:2])), "a.json"))
    assert b2.arw.state_dict()["stats"]["vr"]["m2"] == pytest.approx(
        one.arw.state_dict()["stats"]["vr"]["m2"], rel=1e-12)


def test_a_merge_is_one_more_observed_batch_scales_and_optimizer_included(tmp_path):
    store = ARWStore(tmp_path)
    a = learned(store, "a", BATCHES[:2])
    observed = learned(store, "same", BATCHES[:2])
    observed.arw.observe({k: torch.cat([b[k] for b in BATCHES[2:]]) for k in IDS})
    merge(a, read_export(exported(learned(store, "b", BATCHES[2:])), "b.json"))
    for k, s in observed.arw.log_var.items():
        assert a.arw.log_var[k] == pytest.approx(s, rel=1e-9)
    assert a.arw.state_dict()["optimizer_state"]["step"] == \
        observed.arw.state_dict()["optimizer_state"]["step"]
    assert a.trace[-1]["history_size"] == 20 and "merged" in a.trace[-1]


def test_an_import_into_a_new_state_is_a_copy_and_a_commit_saves_it(tmp_path):
    store = ARWStore(tmp_path)
    b = learned(store, "b", BATCHES)
    fresh = store.open("new", ARWSettings(lr=0.1))
    merge(fresh, read_export(exported(b), "b.json"))
    assert fresh.arw.log_var == b.arw.log_var and fresh.identities == IDS
    assert fresh.arw.lr == 0.1  # the receiving node's settings stay
    store.commit(fresh)
    again = store.open("new", None)
    assert again.arw.history_size == 20 and again.arw.sigmas() == b.arw.sigmas()


def test_windowed_states_keep_the_newest_rewards_theirs_counting_as_newer(tmp_path):
    store = ARWStore(tmp_path)
    a = learned(store, "a", BATCHES[:1], window=6)
    b = learned(store, "b", BATCHES[1:2], window=6)
    merge(a, read_export(exported(b), "b.json"))
    want = torch.cat([BATCHES[0]["vr"], BATCHES[1]["vr"]])[-6:]
    assert torch.equal(a.arw.history()["vr"], want)


@pytest.mark.parametrize("other, match", [
    (dict(ids={"vr": "vr:VideoReward", "js": "js:JavisScore[other settings]"}),
     "learned from js:JavisScore, vr:VideoReward, the import from js:JavisScore\\[other settings\\]"),
    (dict(ids={"vr": "vr:VideoReward", "ta": "ta:ImageBind"}), "rewards of other verifiers"),
    (dict(optimizer="rmsprop"), "optimizer 'adam' and window 0, the import 'rmsprop'"),
])
def test_a_state_of_another_verifier_set_or_settings_is_refused_and_nothing_changes(tmp_path, other, match):
    store = ARWStore(tmp_path)
    a = learned(store, "a", BATCHES[:2])
    before = json.dumps(a.payload())
    ids = other.pop("ids", IDS)
    batches = [{k2: b[k1] for k1, k2 in zip(IDS, ids)} for b in BATCHES[2:]]
    b = learned(store, "b", batches, ids=ids, **other)
    with pytest.raises(ARWStateError, match=match):
        merge(a, read_export(exported(b), "b.json"))
    assert json.dumps(a.payload()) == before


def test_the_same_export_is_merged_once(tmp_path):
    store = ARWStore(tmp_path)
    a = learned(store, "a", BATCHES[:2])
    data = exported(learned(store, "b", BATCHES[2:]))
    merge(a, read_export(data, "b.json"))
    before = json.dumps(a.payload())
    with pytest.raises(ARWStateError, match="merged into it before"):
        merge(a, read_export(json.dumps(json.loads(data), indent=2).encode(), "b again"))
    assert json.dumps(a.payload()) == before


def test_an_export_that_is_not_a_state_names_the_source(tmp_path):
    with pytest.raises(ARWStateError, match="the exported ARW state upload is not an AVITS ARW "
                                            "state file; nothing was imported"):
        read_export(b'{"format": "other"}', "upload")
