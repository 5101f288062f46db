"""A real ComfyUI server (from the environment scripts/env builds) with the pack loaded, started
once per test session on a free loopback port, in its own base directory; always stopped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from comfyctl import ComfyServer, comfyui_dir  # noqa: E402

ARTIFACTS = Path(os.environ.get("AVITS_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> ComfyServer:
    if not (comfyui_dir() / "main.py").exists():
        pytest.fail(f"no ComfyUI tree at {comfyui_dir()}: run scripts/test (it builds one)")
    # a search method of the tests' own, registered as a plugin (tests/plugins/search_plugin.py)
    plugins = {"AVITS_SEARCH_METHODS": "search_plugin",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests" / "plugins"),
                                                          os.environ.get("PYTHONPATH")]))}
    server = ComfyServer(tmp_path_factory.mktemp("comfy-base"), env=plugins)
    server.prepare()
    (server.base / "custom_nodes" / "avits_testpack").symlink_to(Path(__file__).parent / "avits_testpack")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_files(comfy) -> dict[str, Path]:
    """Every tiny twin (scripts/tiny_models) in the server's models folder, written once for the
    session: {name: path}, the LTX-2 files under ltx_*, H3's under h3_*."""
    import tiny_models
    return tiny_models.write_all(comfy.base / "models")


def ltx_files(tiny_files: dict[str, Path]) -> dict[str, Path]:
    """The tiny LTX-2 files by the names scripts/tiny_ltx.py gives them."""
    return {k.removeprefix("ltx_"): v for k, v in tiny_files.items() if k.startswith("ltx_")}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure in a test that used the server, attach the server log's tail."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("comfy") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, ComfyServer):
        report.sections.append(("ComfyUI server log (tail)", server.log_tail(80)))
