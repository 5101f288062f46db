"""AVITS: inference-time scaling for joint audio-video generation, as ComfyUI nodes.

ComfyUI imports this package and calls ``comfy_entrypoint``. The core subpackages
(``search``, ``verifiers``, ``generators``) never import ComfyUI, so the pack also works as a
plain library: ``import comfyui_avits.search``.
"""

WEB_DIRECTORY = "./web"
"""The frontend extension that shows a search's result on its node (web/avits.js)."""


async def comfy_entrypoint():
    """Return the pack's ComfyExtension (imports the ComfyUI glue only when ComfyUI asks)."""
    from .nodes import AVITSExtension

    return AVITSExtension()
