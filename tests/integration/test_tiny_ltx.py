"""The tiny LTX-2 twins (scripts/tiny_ltx.py) load through ComfyUI's own loaders; LTX-AV
samples through ComfyUI's standard LTX-2 text-to-audio-video graph of core nodes only, on the
real server."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from PIL import Image

import tiny_ltx
from comfyctl import ExecutionFailed
from conftest import ltx_files
from graphs import LTX_FRAMES as FRAMES, LTX_SIDE as SIDE, ltx_graph

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def tiny(tiny_files) -> dict[str, Path]:
    return ltx_files(tiny_files)


def _saved(comfy, item: dict) -> Path:
    path = comfy.base / "output" / item["subfolder"] / item["filename"]
    assert path.is_file(), path
    return path


def _assert_frames(comfy, entry: dict) -> None:
    images = entry["outputs"]["18"]["images"]
    assert len(images) == FRAMES
    for item in images:
        with Image.open(_saved(comfy, item)) as im:
            assert im.size == (SIDE, SIDE)


def test_the_files_are_reproducible_and_load_as_ltx(tmp_path):
    first, again = tiny_ltx.write(tmp_path / "a"), tiny_ltx.write(tmp_path / "b")
    assert {k: p.read_bytes() for k, p in first.items()} == {k: p.read_bytes() for k, p in again.items()}
    import comfy.sd  # importable once write() has set ComfyUI up

    for name, kind in [("ltxav", "LTXAV"), ("ltxv", "LTXV")]:
        model = comfy.sd.load_diffusion_model(str(first[name]))
        assert type(model.model.model_config).__name__ == kind


def test_text_to_audio_video(comfy, tiny):
    entry = comfy.run(ltx_graph(tiny, "ltxav"), timeout=120)
    _assert_frames(comfy, entry)
    [audio] = entry["outputs"]["19"]["audio"]
    with av.open(str(_saved(comfy, audio))) as f:
        stream = f.streams.audio[0]
        assert stream.rate == 16000 and stream.channels == 2
        assert sum(frame.samples for frame in f.decode(stream)) > 0


def test_video_only_ltxv_loads_but_needs_t5s_attention_mask(comfy, tiny):
    """LTXVModel.forward takes a required attention_mask, which only the T5-XXL text encoder
    (4.7B, its size fixed in ComfyUI's code) puts in the conditioning; no core node adds one
    to LotusConditioning's. The graph gets as far as the sampler: the loaders succeed."""
    with pytest.raises(ExecutionFailed, match="attention_mask") as err:
        comfy.run(ltx_graph(tiny, "ltxv"), timeout=120)
    error = next(m[1] for m in err.value.details["status"]["messages"] if m[0] == "execution_error")
    assert (error["node_id"], error["node_type"]) == ("14", "SamplerCustomAdvanced")
