"""Every tensor of a search step on one device, for each generator, on a faked GPU host:
ComfyUI's device is the meta device, and an audit of every torch operation of the step (noise,
a later mutation, denoising with the x0 read, decoding) records the devices of its operands. A
CPU tensor meeting a "GPU" one in any operation is a failure, named with the operation. Meta
tensors hold no values, so the audit answers the few reads of a value (``.item()``) with a
fixed number and a copy back to the CPU with zeros (or leaves the CPU buffer as it was): the test is about where tensors live, the
other tests are about what they hold."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import tiny_h3
import tiny_javisdit
import tiny_ltx
import tiny_mmdisco

pytestmark = pytest.mark.integration

GPU = torch.device("meta")
MOVES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)


class DeviceAudit(TorchDispatchMode):
    """Records, per torch operation, the devices of its tensor operands (a CPU scalar may meet
    any device, as on CUDA), and stands in for reading a value off the fake GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[str] = []
        self.devices: set[torch.device] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        devices = {t.device for t in tensors if t.dim() > 0 or t.device != torch.device("cpu")}
        self.devices |= devices
        if len(devices) > 1 and func not in MOVES:
            self.mixed.append(f"{func}: {sorted(map(str, devices))}")
        source = tensors[0].device if tensors else None
        if func is torch.ops.aten._local_scalar_dense.default and source == GPU:
            return 0.5 if tensors[0].dtype.is_floating_point else 0
        if func is torch.ops.aten._to_copy.default and source == GPU and kwargs.get("device") == torch.device("cpu"):
            return torch.zeros(tensors[0].shape, dtype=kwargs.get("dtype") or tensors[0].dtype)
        if func is torch.ops.aten.copy_.default and source != GPU and args[1].device == GPU:
            return args[0]  # a copy into a CPU buffer (ComfyUI's VAEs decode into one)
        return func(*args, **kwargs)


@pytest.fixture
def gpu_host(monkeypatch):
    """ComfyUI sees a GPU (the meta device) with room for everything; the models it loads there
    are dropped from its list afterwards (their weights are gone), so later tests never see them."""
    tiny_ltx.import_comfy()
    import comfy.model_management as mm

    before = list(mm.current_loaded_models)
    monkeypatch.setattr(mm, "get_torch_device", lambda: GPU)
    room = 1 << 36
    monkeypatch.setattr(mm, "get_free_memory",
                        lambda dev=None, torch_free_too=False: (room, room) if torch_free_too else room)
    monkeypatch.setattr(mm, "get_total_memory",
                        lambda dev=None, torch_total_too=False: (room, room) if torch_total_too else room)
    yield
    mm.current_loaded_models[:] = [m for m in mm.current_loaded_models
                                   if m in before and m.device != GPU]


def ltx(d):
    return tiny_ltx.StandardGraph(tiny_ltx.in_process(d)).generator()


def h3(d):
    return tiny_h3.H3Graph(tiny_h3.in_process(d)).generator()


def javisdit(d):
    tiny_javisdit.in_process(d)
    return tiny_javisdit.StandardGraph(steps=4).generator()


def mmdisco(d):
    tiny_mmdisco.write(d)
    import folder_paths

    from comfyui_avits.nodes import mmdisco as node
    folder_paths.add_model_folder_path(node.FOLDER, str(d / node.FOLDER), is_default=True)
    loaded = tiny_ltx._out(node.MMDisCoLoaderNode.execute(
        "videocrafter2/model.ckpt", "auffusion-full", "auffusion_videocrafter2_vggsound.pt", "fp32", "default"))[0]
    return tiny_ltx._out(node.MMDisCoGeneratorNode.execute(loaded, "a dog barking", 3, 8.0, 8.0, 1.0, 2.0))[0]


def toyav(d):
    from comfyui_avits.generators.toyav import ToyAVGenerator
    return ToyAVGenerator("a red ball bouncing", steps=4, device=GPU)


@pytest.mark.parametrize("make", [ltx, h3, javisdit, mmdisco, toyav])
def test_every_tensor_of_a_step_lives_on_one_device(make, gpu_host, tmp_path):
    from comfyui_avits.core import generator as api
    from comfyui_avits.core.verifier import models
    from comfyui_avits.nodes.residency import place

    with DeviceAudit() as audit:  # loading and text encoding too
        gen = make(tmp_path)
        modules = models(gen)
        if modules:
            place("generate", modules)  # as the search does before generating
        states = gen.initial_noise([3, 4])
        if api.unmet(gen, api.LATER_MUTATION) is None:
            states, _ = gen.denoise(states, 0, 1, [3, 4])
            states = [gen.mutate(s, 1, 0.3, 9, "variance_preserving") for s in states]
        start = 1 if api.unmet(gen, api.LATER_MUTATION) is None else 0
        if isinstance(gen, api.PredictsX0):
            states, x0 = gen.denoise_predicting(states, start, gen.steps, [3, 4])
        else:
            states, _ = gen.denoise(states, start, gen.steps, [3, 4])
        gen.decode(states)
    assert GPU in audit.devices, "the step never ran on the faked GPU"
    assert not audit.mixed, "\n".join(audit.mixed[:10])
