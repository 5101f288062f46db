"""A node pack loaded only by the test server: a verifier that goes wrong on purpose."""

import torch
from comfy_api.latest import ComfyExtension, io


class NaNVerifier:
    name = "broken"

    def __call__(self, batch, prompts):
        return torch.full((len(batch),), float("nan"))


class NaNVerifierNode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="AVITSTest_NaNVerifier", category="testing",
                         inputs=[], outputs=[io.Custom("AVITS_VERIFIERS").Output()])

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput([NaNVerifier()])


class Extension(ComfyExtension):
    async def get_node_list(self):
        return [NaNVerifierNode]


async def comfy_entrypoint():
    return Extension()
