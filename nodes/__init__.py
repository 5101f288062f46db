"""ComfyUI glue: the only part of the pack that imports ComfyUI."""

from comfy_api.latest import ComfyExtension, io

from . import aggregation


class AVITSExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*aggregation.NODES]
