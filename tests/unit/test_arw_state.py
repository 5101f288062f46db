"""Named ARW states: read afresh, changed only by a commit, written atomically, never silently
overwritten, and of a size that does not grow with the rewards seen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from comfyui_avits.search.arw_state import ARWSettings, ARWStateError, ARWStore

R = {"vr": torch.tensor([0.1, -0.3, 0.8]), "js": torch.tensor([0.12, 0.2, 0.05])}
IDS = {"vr": "vr:VideoReward", "js": "js:JavisScore"}


def learn(store: ARWStore, name: str = "s", rewards=R, **settings):
    shared = store.open(name, ARWSettings(**settings))
    shared.bind(IDS)
    shared.arw.observe(rewards)
    shared.after_observe()
    store.commit(shared)
    return shared


def test_a_committed_state_survives_a_new_store_and_keeps_learning_identically(tmp_path):
    a = learn(ARWStore(tmp_path))
    again = ARWStore(tmp_path).open("s")  # a server restart
    assert again.arw.history_size == 3 and again.arw.sigmas() == a.arw.sigmas()
    assert again.trace[-1]["history_size"] == 3 and again.identities == IDS
    nxt = {"vr": torch.tensor([1.0]), "js": torch.tensor([0.0])}
    a.arw.observe(nxt)
    again.arw.observe(nxt)
    assert a.arw.log_var == again.arw.log_var


def test_nothing_is_written_before_a_commit(tmp_path):
    store = ARWStore(tmp_path)
    learn(store)
    before = (tmp_path / "s.json").read_bytes()
    shared = store.open("s", reset=True)
    shared.bind(IDS)
    shared.arw.observe(R)
    shared.after_observe()  # dropped without a commit, as a failed prompt is
    assert (tmp_path / "s.json").read_bytes() == before
    assert list(tmp_path.iterdir()) == [tmp_path / "s.json"]


def test_a_file_edited_or_restored_on_disk_is_what_the_next_open_reads(tmp_path):
    store = ARWStore(tmp_path)
    learn(store)
    backup = (tmp_path / "s.json").read_bytes()
    learn(store)
    assert store.open("s").arw.history_size == 6
    (tmp_path / "s.json").write_bytes(backup)  # the user restores the earlier file
    assert learn(store).arw.history_size == 6  # 3 restored + 3 new, not 9


def test_a_commit_refuses_when_the_file_changed_since_it_was_opened(tmp_path):
    store = ARWStore(tmp_path)
    learn(store)
    shared = store.open("s")
    shared.bind(IDS)
    shared.arw.observe(R)
    restored = (tmp_path / "s.json").read_text().replace('"trace": [', '"trace": [ ')
    (tmp_path / "s.json").write_text(restored)
    with pytest.raises(ARWStateError, match="changed on disk while this prompt ran"):
        store.commit(shared)
    assert (tmp_path / "s.json").read_text() == restored


def test_resets_keep_every_old_file_under_its_own_name(tmp_path):
    store = ARWStore(tmp_path)
    learn(store)
    contents = []
    for _ in range(3):  # three resets within one second
        contents.append((tmp_path / "s.json").read_bytes())
        shared = store.open("s", reset=True)
        assert shared.arw.history_size == 0
        shared.bind(IDS)
        shared.arw.observe(R)
        store.commit(shared)
    backups = sorted(tmp_path.glob("s.json.bak-*"))
    assert len(backups) == 3
    assert sorted(b.read_bytes() for b in backups) == sorted(contents)
    assert store.open("s").arw.history_size == 3


def test_names_settings_and_identities_are_checked(tmp_path):
    store = ARWStore(tmp_path)
    learn(store)
    for bad in ("../etc", "", "a/b", "." * 3):
        with pytest.raises(ARWStateError, match="name"):
            store.open(bad)
    with pytest.raises(ARWStateError, match="optimizer 'adam' and window 0, not 'sgd' and 0"):
        store.open("s", ARWSettings(optimizer="sgd"))
    with pytest.raises(ARWStateError, match="window 0, not 'adam' and 500"):
        store.open("s", ARWSettings(window=500))
    with pytest.raises(ARWStateError, match="reset must be true or false, got 'false'"):
        store.open("s", reset="false")
    for bad in ({"lr": float("nan")}, {"window": 1}, {"iters": -3}, {"weights": [float("inf")]}):
        with pytest.raises(ARWStateError):
            ARWSettings(**bad)
    shared = store.open("s")
    with pytest.raises(ARWStateError, match="'vr' was learned from vr:VideoReward, this search "
                                            "uses vr:VideoReward-other.*reset the state"):
        shared.bind({**IDS, "vr": "vr:VideoReward-other"})
    with pytest.raises(ARWStateError, match=r"learned from the rewards \['js', 'vr'\], this "
                                            r"search gives \['js', 'other'\].*another state name"):
        shared.bind({"js": IDS["js"], "other": "o"})


def _ok_file(tmp_path) -> dict:
    learn(ARWStore(tmp_path), "good")
    return json.loads((tmp_path / "good.json").read_text())


def _bad_contents(tmp_path):
    ok = _ok_file(tmp_path)

    def edited(fn):
        data = json.loads(json.dumps(ok))
        fn(data)
        return json.dumps(data)

    return [
        ('{"format": "avits-arw-state", "version": 2, "sta', "corrupt"),
        ('{"hello": 1}', "not an AVITS ARW state"),
        ('{"format": "avits-arw-state", "version": 99, "state": {}}', "version 99"),
        (json.dumps(ok).replace('"count": 3', '"count": NaN', 1), "non-finite number .NaN."),
        (json.dumps(ok).replace('"lr": 0.05', '"lr": Infinity'), "non-finite number .Infinity."),
        (edited(lambda d: d.update(state="abc")), "no valid 'state'"),
        (edited(lambda d: d["state"]["optimizer_state"].update(exp_avg={"vr": 0.0})), "exp_avg must give"),
        (edited(lambda d: d["state"]["log_var"].update(vr=5000)), r"log_var\['vr'\] must lie"),
        (edited(lambda d: d["state"].update(stats={"vr": [1, 2]})), "stats must hold one entry"),
        (edited(lambda d: d.update(identities=[1])), "malformed"),
    ]


def test_bad_files_raise_our_message_and_stay_untouched(tmp_path):
    for content, match in _bad_contents(tmp_path):
        path = tmp_path / "s.json"
        path.write_text(content)
        with pytest.raises(ARWStateError, match=match) as err:
            ARWStore(tmp_path).open("s")
        assert "reset the state" in str(err.value)
        assert path.read_text() == content
        shared = ARWStore(tmp_path).open("s", reset=True)  # a reset starts afresh and keeps it
        ARWStore(tmp_path).commit(shared)
        assert any(p.read_text() == content for p in tmp_path.glob("s.json.bak-*"))


def test_a_version_1_file_is_carried_over_by_name(tmp_path):
    v1 = {"format": "avits-arw-state", "version": 1, "name": "old", "trace": [],
          "state": {"name": "arw", "verifiers": ["text", "sync"], "lr": 0.05, "iters": 50,
                    "optimizer": "adam", "history_size": None, "weights": [0.2, 0.8],
                    "history": {"text": [1.0, 2.0, 4.0], "sync": [0.3, 0.1, 0.2]},
                    "log_var": [0.5, -1.0],
                    "optimizer_state": {"step": 50, "exp_avg": [0.1, 0.2], "exp_avg_sq": [0.3, 0.4]}}}
    (tmp_path / "old.json").write_text(json.dumps(v1))
    arw = ARWStore(tmp_path).open("old", ARWSettings(weights=[0.2, 0.8])).arw
    assert arw.history_size == 3 and arw.log_var == {"text": 0.5, "sync": -1.0}
    assert arw.state_dict()["stats"]["text"]["mean"] == pytest.approx(7 / 3)


def test_the_file_size_does_not_grow_with_the_rewards_seen(tmp_path, monkeypatch):
    from comfyui_avits.search import arw_state
    monkeypatch.setattr(arw_state, "TRACE_LIMIT", 20)
    store = ARWStore(tmp_path)
    g = torch.Generator().manual_seed(0)
    sizes = []
    for k in range(40):
        shared = store.open("big")
        shared.bind(IDS)
        n = 20_000 if k % 10 == 0 else 5
        shared.arw.observe({"vr": torch.randn(n, generator=g), "js": torch.rand(n, generator=g)})
        shared.after_observe()
        store.commit(shared)
        sizes.append((tmp_path / "big.json").stat().st_size)
    assert store.open("big").arw.history_size == 4 * 20_000 + 36 * 5
    assert len(store.open("big").trace) == 20
    assert max(sizes[20:]) < 1.05 * min(sizes[20:]) and max(sizes) < 20_000


WRITER = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, sys.argv[2])
    from comfyui_avits.search import arw_state
    from comfyui_avits.search.arw_state import ARWStore
    store = ARWStore(sys.argv[1])
    shared = store.open("crash")
    shared.arw.observe({"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0, 1.0])})
    store.commit(shared)
    def pause(tmp):
        print("in-write", tmp, flush=True)
        time.sleep(60)
    arw_state.BEFORE_REPLACE.append(pause)
    shared = store.open("crash")
    shared.arw.observe({"a": torch.tensor([5.0]), "b": torch.tensor([7.0])})
    store.commit(shared)
""")


def test_a_writer_killed_inside_the_write_leaves_the_old_state(tmp_path):
    import comfyui_avits
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path),
                             os.path.dirname(comfyui_avits.__path__[0])], stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().split()
    assert line[0] == "in-write" and os.path.exists(line[1])  # the new file is written, not in place
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shared = ARWStore(tmp_path).open("crash")
    assert shared.arw.history_size == 2  # the old state, whole
    learn_more = {"a": torch.tensor([3.0]), "b": torch.tensor([2.0])}
    shared.arw.observe(learn_more)
    ARWStore(tmp_path).commit(shared)
    assert ARWStore(tmp_path).open("crash").arw.history_size == 3
