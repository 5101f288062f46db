"""ComfyUI glue: the only part of the pack that imports ComfyUI."""

from comfy_api.latest import ComfyExtension, io

from . import aggregation, generators, report, search, verifiers


class AVITSExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*generators.NODES, *verifiers.NODES, *aggregation.NODES, *search.NODES,
                *report.NODES]
