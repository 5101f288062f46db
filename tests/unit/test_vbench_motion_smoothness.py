"""VBench's motion smoothness on a tiny random AMT-S in the published format, loaded by the real
loader. The twin cannot interpolate, so these test the definition: VBench's motion_score
re-computed here loop by loop (8-bit frames, even frames in, InputPadder, one interpolation per
pair, 8-bit outputs, odd frames compared, averaged), odd and even frame counts, frame sizes off
the divisor, the low-memory scale, and wrong or missing files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comfyui_avits.core.batch import MediaError
from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.core.verifier import Verifier
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.vbench import motion_smoothness as ms
from comfyui_avits.verifiers.vbench.amt import AMTS, Architecture

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_amt  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_amt.write(tmp_path_factory.mktemp("models")).parent


@pytest.fixture(scope="module")
def verifier(folder) -> ms.MotionSmoothness:
    return ms.load(folder)


def clips(n: int, frames: int, h: int, w: int, seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    return AVBatch(torch.rand(n, frames, h, w, 3, generator=g), 8.0, torch.zeros(n, 1, 1000 * frames), 8000)


def vbench_motion_score(model: AMTS, clip: torch.Tensor, scale: float = 1.0) -> float:
    """VBench's MotionSmoothness.motion_score for one clip [T, H, W, 3], step by step as it
    runs on a file's frames."""
    frames = list((clip * 255).clamp(0, 255).to(torch.uint8).numpy())  # an 8-bit file
    inputs = [torch.tensor(f).permute(2, 0, 1).unsqueeze(0) / 255.0 for f in frames[0::2]]
    assert len(inputs) > 1
    divisor = int(16 / scale)
    ht, wd = inputs[0].shape[-2:]
    pad_ht = (((ht // divisor) + 1) * divisor - ht) % divisor
    pad_wd = (((wd // divisor) + 1) * divisor - wd) % divisor
    pad = [pad_wd // 2, pad_wd - pad_wd // 2, pad_ht // 2, pad_ht - pad_ht // 2]
    inputs = [F.pad(x, pad, mode="replicate") for x in inputs]
    outputs = [inputs[0]]
    for in_0, in_1 in zip(inputs[:-1], inputs[1:]):
        with torch.no_grad():
            outputs += [model(in_0, in_1, 0.5, scale), in_1]
    outputs = [x[..., pad[2]:x.shape[-2] - pad[3], pad[0]:x.shape[-1] - pad[1]] for x in outputs]
    outputs = [(x * 255.0).squeeze(0).permute(1, 2, 0).numpy().clip(0, 255).astype(np.uint8)
               for x in outputs]
    ori, interpolated = frames[1::2], outputs[1::2]
    scores = [np.mean(np.abs(ori[i].astype(np.int16) - interpolated[i].astype(np.int16)))
              for i in range(len(interpolated))]
    return (255.0 - np.mean(np.array(scores))) / 255.0


# ---- loading ---------------------------------------------------------------------------------

def test_the_twin_is_in_the_official_layout_and_loads_through_the_real_path(folder, verifier):
    path = folder / "amt-s.pth"
    checkpoint = torch.load(path, weights_only=True)
    assert path.name == ms.FILES[0][0] and list(checkpoint) == ["state_dict"]
    with torch.device("meta"):
        official = AMTS().state_dict()
    assert len(official) == 213  # the tensors of VBench's AMT-S Model (counted on its code)
    assert set(checkpoint["state_dict"]) == set(official)
    assert verifier.model.arch == Architecture(**tiny_amt.TINY)
    assert not verifier.model.training
    assert isinstance(verifier, Verifier) and verifier.name == ms.NAME == "motion_smoothness"
    assert verifier.models() == [verifier.model]
    assert verifier.identity.startswith("motion_smoothness") and "amt-s.pth" in verifier.identity


def test_a_missing_file_names_the_file_the_folder_and_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError) as e:
        ms.load(tmp_path)
    assert "amt-s.pth" in str(e.value) and str(tmp_path) in str(e.value)
    assert "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth" in str(e.value)


def test_a_wrong_file_is_a_checkpoint_error_naming_the_key(folder, tmp_path):
    state = torch.load(folder / "amt-s.pth", weights_only=True)["state_dict"]
    cases = {
        "bare": (state, "'state_dict'"),  # the model's tensors without AMT's checkpoint wrapper
        "missing": ({"state_dict": {k: v for k, v in state.items() if k != "comb_block.1.weight"}},
                    "comb_block.1.weight"),
        "shape": ({"state_dict": {**state, "decoder2.convblock.2.bias": torch.zeros(3)}},
                  "decoder2.convblock.2.bias"),
        "other": ({"state_dict": {"encoder.weight": torch.zeros(2)}}, "update4.convc1.weight"),
        "radius": ({"state_dict": {**state, "update4.convc1.weight": torch.zeros(6, 100, 1, 1)}},
                   "update4.convc1.weight"),
    }
    for name, (bad, key) in cases.items():
        (tmp_path / name).mkdir()
        torch.save(bad, tmp_path / name / "amt-s.pth")
        with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
            ms.load(tmp_path / name)


# ---- the definition, re-computed loop by loop --------------------------------------------------

@pytest.mark.parametrize("frames, h, w", [(5, 120, 140), (6, 120, 140), (3, 128, 144), (8, 131, 129)])
def test_batched_scores_equal_vbench_computed_clip_by_clip_pair_by_pair(verifier, frames, h, w):
    """Odd counts (the last frame interpolated) and even ones (the last odd frame unscored),
    sides padded (to 128 x 144, 144 x 144) or already multiples of 16."""
    batch = clips(2, frames, h, w, seed=frames)
    got = verifier(batch, ["", ""])
    assert got.shape == (2,) and got.dtype == torch.float64
    want = [vbench_motion_score(verifier.model, batch.video[i]) for i in range(2)]
    # batched and one-pair convolutions round differently, which may move a few 8-bit values
    # across a truncation step: each moves a score by 1 / (255 * 3 * H * W * pairs) < 1e-7
    assert got.tolist() == pytest.approx(want, abs=1e-6)
    assert 0.5 < got.min() and got.max() < 1 and got[0] != got[1]


def test_only_interpolated_odd_frames_count(verifier):
    """Frame 1 is compared; in an even-length clip the last (odd) frame is not."""
    batch = clips(1, 6, 120, 140, seed=1)
    base = verifier(batch, [""])
    for t, changes in ((1, True), (5, False)):
        video = batch.video.clone()
        video[0, t] = 1 - video[0, t]
        other = verifier(AVBatch(video, batch.fps, batch.audio, batch.sample_rate), [""])
        assert (other != base).item() == changes


def test_the_low_memory_scale_pads_to_its_divisor_and_shrinks_the_flow_estimate(verifier):
    half = ms.MotionSmoothness(verifier.model, verifier.identity, scale=0.5)
    batch = clips(1, 5, 250, 270, seed=2)  # padded to 256 x 288 (multiples of 32), flows at half
    got = half(batch, [""])
    assert got.item() == pytest.approx(vbench_motion_score(verifier.model, batch.video[0], 0.5), abs=1e-6)
    assert got.item() != pytest.approx(verifier(batch, [""]).item(), abs=1e-6)
    assert half.identity != verifier.identity
    with pytest.raises(ValueError, match="scale"):
        ms.MotionSmoothness(verifier.model, verifier.identity, scale=1.5)


def test_clips_it_cannot_score_are_clear_errors(verifier):
    with pytest.raises(MediaError, match="at least 3 frames.*has 2"):
        verifier(clips(1, 2, 128, 128), [""])
    with pytest.raises(MediaError, match="at least 128 px.*100 x 200"):
        verifier(clips(1, 5, 100, 200), [""])


def test_another_dtype_runs_and_agrees(folder, verifier):
    batch = clips(1, 5, 120, 140, seed=3)
    double = ms.load(folder, dtype=torch.float64)
    assert next(double.model.parameters()).dtype == torch.float64
    assert double(batch, [""]).item() == pytest.approx(verifier(batch, [""]).item(), abs=1e-4)
