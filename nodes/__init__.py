"""ComfyUI glue: the only part of the pack that imports ComfyUI."""

from comfy_api.latest import Caching, ComfyExtension, io
from server import PromptServer

from . import (aggregation, arw_transfer, comfy_bridge, generators, imagebind, javisdit, mmdisco, qwen2vl, replay, report,
               score, search, select, synchformer, transactions, vbench, verifiers)


class AVITSExtension(ComfyExtension):
    async def on_load(self) -> None:
        """Hook the prompt lifecycle (a prompt is a transaction over the ARW states) and the
        queue (to see what the API sent for ``reset`` before ComfyUI converts it); serve ARW
        states' export and import."""
        await Caching().register_provider(transactions.PromptEnd())
        PromptServer.instance.add_on_prompt_handler(transactions.keep_raw_resets)
        arw_transfer.add_routes(PromptServer.instance.routes)

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [*generators.NODES, *comfy_bridge.NODES, *javisdit.NODES, *mmdisco.NODES, *verifiers.NODES, *imagebind.NODES, *qwen2vl.NODES, *synchformer.NODES, *vbench.NODES,
                *aggregation.NODES, *arw_transfer.NODES, *search.NODES, *select.NODES, *replay.NODES, *report.NODES,
                *score.NODES]
