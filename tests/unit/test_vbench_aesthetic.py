"""VBench's aesthetic quality on tiny random twins of CLIP ViT-L/14 (Hugging Face safetensors)
and LAION's linear predictor, loaded by the real loader: VBench's computation re-computed here
in its batches of 32 frames, wrong and missing files, reduced precision."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.vbench import aesthetic_quality as aesthetic

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_vbench  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_vbench.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def verifier(folder):
    return aesthetic.load(folder)


CLIP_TRANSFORM = transforms.Compose([  # vbench.utils.clip_transform(224)
    transforms.Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False),
    transforms.CenterCrop(224),
    transforms.Lambda(lambda x: x.float().div(255.0)),
    transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


def vbench_aesthetic_quality(clip, head, video: torch.Tensor) -> float:
    """vbench/aesthetic_quality.py's laion_aesthetic for one video read by load_video."""
    frames = np.array([(f * 255).clamp(0, 255).to(torch.uint8).numpy() for f in video])
    images = torch.Tensor(frames).permute(0, 3, 1, 2)
    scores = []
    for i in range(0, len(images), 32):
        batch = CLIP_TRANSFORM(images[i:i + 32])
        with torch.no_grad():
            feats = F.normalize(clip(batch).to(torch.float32), dim=-1, p=2)
            scores.append(head(feats).squeeze(dim=-1))
    return torch.mean(torch.cat(scores) / 10, dim=0, keepdim=True).item()


def test_the_twins_load_through_the_real_path(folder, verifier):
    from safetensors.torch import load_file
    whole = load_file(str(folder / aesthetic.CLIP_FILE))
    assert any(k.startswith("text_model.") for k in whole) and "logit_scale" in whole  # as published
    cfg = verifier.clip.tower.config
    assert (cfg.patch_size, cfg.image_size, cfg.num_attention_heads, cfg.projection_dim) == (14, 224, 1, 32)
    assert verifier.head.weight.shape == (1, 32) and verifier.head.weight.dtype == torch.float32
    assert verifier.identity.startswith("aesthetic_quality(clip-vit-large-patch14.safetensors ")
    assert aesthetic.NAME == verifier.name == "aesthetic_quality" and "MIT" in aesthetic.LICENCE


def test_aesthetic_quality_is_vbenchs_computation_over_batches_of_32_frames(verifier):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 37, 60, 100, 3, generator=g)  # 37 frames: a batch of 32 and one of 5
    video[1] = 0.5 * video[1] + 0.5 * torch.linspace(0, 1, 100)[None, None, :, None]
    batch = AVBatch(video, 12.0, torch.zeros(2, 1, 3700), 1200)
    expected = [vbench_aesthetic_quality(verifier.clip, verifier.head, v) for v in batch.video]
    got = verifier(batch, ["", ""])
    assert got.dtype == torch.float64 and got.shape == (2,)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)
    assert abs(expected[0] - expected[1]) > 1e-3  # the twin's rating follows the frames


def test_bf16_stays_near_fp32(folder, verifier):
    batch = AVBatch(torch.rand(1, 4, 32, 32, 3, generator=torch.Generator().manual_seed(1)), 8.0,
                    torch.zeros(1, 1, 400), 800)
    low = aesthetic.load(folder, dtype=torch.bfloat16)
    assert next(low.clip.parameters()).dtype == torch.bfloat16 and low.identity.endswith("bfloat16)")
    torch.testing.assert_close(low(batch, [""]), verifier(batch, [""]), atol=0.02, rtol=0)


def test_wrong_and_missing_files_are_named(folder, tmp_path):
    import shutil
    shutil.copy(folder / aesthetic.CLIP_FILE, tmp_path / aesthetic.CLIP_FILE)
    with pytest.raises(CheckpointError, match=r"'sa_0_4_vit_l_14_linear.pth' is not in .*"
                       r"github\.com/LAION-AI/aesthetic-predictor"):
        aesthetic.load(tmp_path)
    torch.save(torch.nn.Linear(768, 1).state_dict(), tmp_path / aesthetic.HEAD_FILE)  # for the real CLIP
    with pytest.raises(CheckpointError, match=re.escape("'weight' is (1, 768) in the file")):
        aesthetic.load(tmp_path)
    torch.save({"linear.weight": torch.zeros(1, 32)}, tmp_path / aesthetic.HEAD_FILE)
    with pytest.raises(CheckpointError, match="no 'weight'"):
        aesthetic.load(tmp_path)
