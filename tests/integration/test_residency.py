"""Residency on a GPU host: a loader's device choice holds through the search's placement. The
GPU is faked by making ComfyUI's device the meta device, where any tensor that strays shows (a
step mixing meta weights with CPU latents fails). MMDisCo loaded with device = cpu stays on the
CPU when the search places its models, and its step runs there."""

from __future__ import annotations

import pytest
import torch

import tiny_ltx
import tiny_mmdisco

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mmdisco(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    tiny_ltx.import_comfy()
    tiny_mmdisco.write(d)
    import folder_paths

    from comfyui_avits.nodes import mmdisco as node
    folder_paths.add_model_folder_path(node.FOLDER, str(d / node.FOLDER), is_default=True)
    return node


def test_a_cpu_choice_stays_on_the_cpu_when_the_search_places_the_models(mmdisco, monkeypatch):
    import comfy.model_management as mm

    from comfyui_avits.core import verifier as verifier_api
    from comfyui_avits.nodes.residency import patcher, place

    loaded = tiny_ltx._out(mmdisco.MMDisCoLoaderNode.execute(
        "videocrafter2/model.ckpt", "auffusion-full", "auffusion_videocrafter2_vggsound.pt",
        "fp32", "cpu"))[0]
    gen = tiny_ltx._out(mmdisco.MMDisCoGeneratorNode.execute(
        loaded, "a dog barking", 2, 8.0, 8.0, 1.0, 2.0))[0]
    monkeypatch.setattr(mm, "get_torch_device", lambda: torch.device("meta"))  # a "GPU" host
    modules = verifier_api.models(gen)
    assert modules and all(patcher(m).load_device == torch.device("cpu") for m in modules)
    place("generate", modules)
    devices = {p.device for m in modules for p in m.parameters()}
    assert devices == {torch.device("cpu")}
    states, _ = gen.denoise(gen.initial_noise([0]), 0, 1, [0])
    assert all(t.device == torch.device("cpu") and torch.isfinite(t).all() for t in states[0])
