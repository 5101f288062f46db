"""A node pack loaded only by the test server: verifiers that go wrong on purpose or give
rewards chosen in advance, one that records whether ComfyUI's model management loaded its
model, and a switch that pauses the next ARW state write (so a test can kill the server inside
it). It also makes this server build MiniMax H3's audio VAE at the tiny twin's widths
(scripts/tiny_h3.py says why)."""

import sys
import time
from pathlib import Path

import comfy.model_management
import torch
from comfy_api.latest import ComfyExtension, io

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import tiny_h3  # noqa: E402

tiny_h3.use_twin_sizes()

VERIFIERS = io.Custom("AVITS_VERIFIERS")


class NaNVerifier:
    name = "broken"

    def __call__(self, batch, prompts):
        return torch.full((len(batch),), float("nan"))


class FixedRewards:
    """The k-th clip scored in this prompt gets values[k]."""

    def __init__(self, name, values):
        self.name, self.values, self.k = name, values, 0

    def __call__(self, batch, prompts):
        out = torch.tensor(self.values[self.k:self.k + len(batch)], dtype=torch.float64)
        self.k += len(batch)
        return out


class ModelVerifier:
    """Rewards 1 while ComfyUI's model management holds its model as loaded, else 0."""

    name = "model_loaded"

    def __init__(self):
        self.module = torch.nn.Linear(4, 1)

    def models(self):
        return [self.module]

    def __call__(self, batch, prompts):
        loaded = any(self.module in list(m.model.model.modules())
                     for m in comfy.model_management.current_loaded_models if m.model is not None)
        return torch.full((len(batch),), float(loaded))


class NaNVerifierNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_NaNVerifier", category="testing",
                         inputs=[], outputs=[VERIFIERS.Output()])

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput([NaNVerifier()])


class FixedRewardsNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_FixedRewards", category="testing",
                         inputs=[io.String.Input("name"), io.String.Input("values")],
                         outputs=[VERIFIERS.Output()], not_idempotent=True)

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")

    @classmethod
    def execute(cls, name, values) -> io.NodeOutput:
        return io.NodeOutput([FixedRewards(name, [float(v) for v in values.split(",")])])


class ModelVerifierNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_ModelVerifier", category="testing",
                         inputs=[], outputs=[VERIFIERS.Output()])

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput([ModelVerifier()])


class PauseInWriteNode(io.ComfyNode):
    """When it runs, the next ARW state write stops after its temporary file is written and
    synced, touches ``flag`` and sleeps, so the test can kill the server right there."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_PauseInWrite", category="testing",
                         inputs=[io.String.Input("flag")], outputs=[], is_output_node=True)

    @classmethod
    def execute(cls, flag) -> io.NodeOutput:
        # ComfyUI names a pack's modules after its path: find ours by the end of the name
        arw_state = next(m for name, m in list(sys.modules.items())
                         if name.endswith("comfyui_avits.search.arw_state"))

        def pause(tmp):
            Path(flag).write_text(str(tmp))
            time.sleep(600)

        arw_state.BEFORE_REPLACE.append(pause)
        return io.NodeOutput()


class ClipNode(io.ComfyNode):
    """Random frames (IMAGE) and sound (AUDIO) of any shape, for feeding AVITS_ScoreAV."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_Clip", category="testing",
                         inputs=[io.Int.Input("frames", min=0), io.Int.Input("height", min=1),
                                 io.Int.Input("width", min=1), io.Int.Input("samples", min=0),
                                 io.Int.Input("sample_rate", min=1), io.Int.Input("channels", min=1)],
                         outputs=[io.Image.Output(), io.Audio.Output()])

    @classmethod
    def execute(cls, frames, height, width, samples, sample_rate, channels) -> io.NodeOutput:
        g = torch.Generator().manual_seed(0)
        images = torch.rand(frames, height, width, 3, generator=g)
        audio = {"waveform": 0.1 * torch.randn(1, channels, samples, generator=g),
                 "sample_rate": sample_rate}
        return io.NodeOutput(images, audio)


class Extension(ComfyExtension):
    async def get_node_list(self):
        return [NaNVerifierNode, FixedRewardsNode, ModelVerifierNode, PauseInWriteNode, ClipNode]


async def comfy_entrypoint():
    return Extension()
