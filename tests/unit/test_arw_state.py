"""Named ARW states: shared per name, persisted atomically, never silently overwritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from comfyui_avits.search.arw_state import ARWRegistry, ARWStateError

R = {"vr": torch.tensor([0.1, -0.3, 0.8]), "js": torch.tensor([0.12, 0.2, 0.05])}


def test_same_name_same_object_and_state_survives_a_new_registry(tmp_path):
    reg = ARWRegistry(tmp_path)
    a = reg.get("default")
    assert reg.get("default") is a
    a.arw.observe(R)
    a.after_observe()
    again = ARWRegistry(tmp_path).get("default")  # a server restart
    assert again.arw.history_size == 3
    assert again.arw.sigmas() == a.arw.sigmas()
    assert again.trace[-1]["history_size"] == 3
    nxt = {"vr": torch.tensor([1.0]), "js": torch.tensor([0.0])}
    a.arw.observe(nxt)
    again.arw.observe(nxt)
    assert a.arw.log_var == again.arw.log_var


def test_reset_and_names(tmp_path):
    reg = ARWRegistry(tmp_path)
    s = reg.get("x")
    s.arw.observe(R)
    s.after_observe()
    assert reg.get("x", reset=True).arw.history_size == 0
    assert json.loads((tmp_path / "x.json").read_text())["state"]["history"] == {}
    for bad in ("../etc", "", "a/b", "." * 3):
        with pytest.raises(ARWStateError, match="name"):
            reg.get(bad)
    with pytest.raises(ARWStateError, match="optimizer 'adam'"):
        reg.get("x", optimizer="sgd")


@pytest.mark.parametrize("content,match", [
    ('{"format": "avits-arw-state", "version": 1, "sta', "corrupt"),
    ('{"hello": 1}', "not an AVITS ARW state"),
    ('{"format": "avits-arw-state", "version": 99, "state": {}}', "version 99"),
    ('{"format": "avits-arw-state", "version": 1, "state": {"name": "arw"}}', "does not load"),
])
def test_bad_files_raise_and_stay_untouched(tmp_path, content, match):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(ARWStateError, match=match):
        ARWRegistry(tmp_path).get("s")
    assert path.read_text() == content


WRITER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, sys.argv[2])
    from comfyui_avits.search.arw_state import ARWRegistry
    shared = ARWRegistry(sys.argv[1]).get("crash")
    shared.save()
    g = torch.Generator().manual_seed(0)
    print("ready", flush=True)
    while True:  # big histories make each write long enough to be killed in the middle
        shared.arw.observe({"a": torch.randn(5000, generator=g), "b": torch.rand(5000, generator=g)})
        shared.after_observe()
""")


def test_writer_killed_mid_write_leaves_a_loadable_state(tmp_path):
    import comfyui_avits
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path),
                                 os.path.dirname(comfyui_avits.__path__[0])],
                                stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        shared = ARWRegistry(tmp_path).get("crash")  # must load: old or new, never half
        assert shared.arw.history_size % 5000 == 0
        assert json.loads((tmp_path / "crash.json").read_text())["format"] == "avits-arw-state"
