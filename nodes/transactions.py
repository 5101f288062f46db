"""A queued prompt is one transaction over the shared ARW states it names.

The ARW State node opens a working copy of its state for the running prompt (every node of the
prompt that names the state shares that copy, so a later search sees an earlier one's rewards);
nothing is written while the prompt runs. When the prompt ends, ComfyUI's prompt lifecycle
hook commits the copies if every node finished, and drops them otherwise (an error or an
interrupt anywhere in the prompt), so the files other prompts see change only with a prompt
that succeeded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import folder_paths
from comfy_api.latest import Caching
from comfy_execution.progress import NodeState, get_progress_state
from comfy_execution.utils import get_executing_context

from ..search.arw_state import ARWSettings, ARWStore, SharedARW

RAW_RESET = "avits_raw_reset"
"""Where the prompt hook keeps a ``reset`` value that was not a JSON boolean (ComfyUI's input
validation turns any string, even "false", into True before the node sees it)."""

_open: dict[str, dict[str, tuple[SharedARW, ARWSettings, bool]]] = {}


def store() -> ARWStore:
    """The server's ARW states, under ComfyUI's user directory."""
    return ARWStore(Path(folder_paths.get_user_directory()) / "avits" / "arw")


def open_state(name: str, settings: ARWSettings, reset: bool) -> SharedARW:
    """The running prompt's working copy of state ``name``; two nodes of one prompt may name
    the same state only with the same settings."""
    context = get_executing_context()
    states = _open.setdefault(context.prompt_id if context else "", {})
    if name in states:
        shared, first, first_reset = states[name]
        if (first, first_reset) != (settings, reset):
            raise ValueError(f"two AVITS ARW State nodes in this prompt name the state '{name}' "
                             f"with different settings ({_describe(first, first_reset)} and "
                             f"{_describe(settings, reset)}); give them the same settings or "
                             "different names")
        return shared
    shared = store().open(name, settings, reset)
    states[name] = (shared, settings, reset)
    return shared


def _describe(s: ARWSettings, reset: bool) -> str:
    return (f"weights {s.weights}, lr {s.lr:g}, iterations {s.iters}, optimizer {s.optimizer}, "
            f"window {s.window or 0}, reset {reset}")


def _succeeded(prompt_id: str) -> bool:
    """True when no node of the prompt was left running: a node that raised or was
    interrupted started and never finished."""
    registry = get_progress_state()
    return registry.prompt_id == prompt_id and not any(
        entry["state"] == NodeState.Running for entry in registry.nodes.values())


def finish(prompt_id: str) -> None:
    """Commit the prompt's working copies if it succeeded, else drop them."""
    states = _open.pop(prompt_id, {})
    if not states:
        return
    if not _succeeded(prompt_id):
        logging.info("AVITS: prompt %s did not finish; ARW state(s) %s left unchanged",
                     prompt_id, sorted(states))
        return
    for name, (shared, _, _) in states.items():
        try:
            store().commit(shared)
        except Exception as e:  # noqa: BLE001 (the hook must not take the server down)
            logging.error("AVITS: ARW state '%s' was not saved: %s", name, e)


class PromptEnd(Caching.CacheProvider):
    """Uses only the lifecycle half of ComfyUI's cache provider hook: it never caches."""

    async def on_lookup(self, context):
        return None

    async def on_store(self, context, value) -> None:
        return None

    def should_cache(self, context, value=None) -> bool:
        return False

    def on_prompt_end(self, prompt_id: str) -> None:
        finish(prompt_id)


def keep_raw_resets(json_data: dict) -> dict:
    """POST /prompt hook (before validation): for an ARW State node whose ``reset`` is not a
    JSON boolean or a link, keep the raw value beside it so the node can refuse it."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    for node in (prompt.values() if isinstance(prompt, dict) else ()):
        if isinstance(node, dict) and node.get("class_type") == "AVITS_ARWState":
            inputs = node.get("inputs")
            if isinstance(inputs, dict) and not isinstance(inputs.get("reset", False), (bool, list)):
                inputs[RAW_RESET] = repr(inputs["reset"])
    return json_data
