"""VBench's subject and background consistency on tiny random twins of DINO ViT-B/16 and CLIP
ViT-B/32 in their published formats (scripts/tiny_vbench.py), loaded by the real loaders. The
twins cannot know what a subject is, so these test the definition: VBench's frame reading,
transforms and first/previous-frame rule re-computed here frame by frame, still clips, wrong
and missing files."""

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

from comfyui_avits.core.batch import MediaError
from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.vbench import DIMENSIONS, load
from comfyui_avits.verifiers.vbench import background_consistency as background
from comfyui_avits.verifiers.vbench import subject_consistency as subject
from comfyui_avits.verifiers.vbench.consistency import consistency
from comfyui_avits.verifiers.vbench.dino import DinoViT, load_dino
from comfyui_avits.verifiers.vbench.frames import uint8_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_vbench  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_vbench.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def verifiers(folder):
    return {v.name: v for v in load(["subject_consistency", "background_consistency"], folder)}


def clips(h: int, w: int, frames: int = 5, seed: int = 0) -> AVBatch:
    """Three clips: noise, a gradient that slowly changes, and a still frame."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(3, frames, h, w, 3, generator=g)
    ramp = torch.linspace(0, 1, w)[None, :, None].expand(h, w, 3)
    for t in range(frames):
        v[1, t] = (0.7 * ramp + 0.3 * t / frames * torch.rand(h, w, 3, generator=g)).clamp(0, 1)
    v[2] = v[2, :1]
    return AVBatch(v, 8.0, torch.zeros(3, 1, frames * 100), 800)


# ---- VBench's definition, written as VBench runs it ---------------------------------------

def read_like_vbench(video: torch.Tensor) -> torch.Tensor:
    """vbench.utils.load_video: the 8-bit frames decord gives, as ``torch.Tensor`` (float32
    0..255) [T, 3, H, W]."""
    frames = np.array([(frame * 255).clamp(0, 255).to(torch.uint8).numpy() for frame in video])
    return torch.Tensor(frames).permute(0, 3, 1, 2)


DINO_TRANSFORM = transforms.Compose([  # vbench.utils.dino_transform(224)
    transforms.Resize(size=224, antialias=False),
    transforms.Lambda(lambda x: x.float().div(255.0)),
    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
CLIP_TRANSFORM = transforms.Compose([  # vbench.utils.clip_transform(224)
    transforms.Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False),
    transforms.CenterCrop(224),
    transforms.Lambda(lambda x: x.float().div(255.0)),
    transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


def vbench_subject_consistency(dino, video: torch.Tensor) -> float:
    """vbench/subject_consistency.py: DINO one frame at a time."""
    images = DINO_TRANSFORM(read_like_vbench(video))
    video_sim, first, former = 0.0, None, None
    for i in range(len(images)):
        with torch.no_grad():
            features = F.normalize(dino(images[i].unsqueeze(0)), dim=-1, p=2)
        if i == 0:
            first = features
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, features).item())
            sim_fir = max(0.0, F.cosine_similarity(first, features).item())
            video_sim += (sim_pre + sim_fir) / 2
        former = features
    return video_sim / (len(images) - 1)


def vbench_background_consistency(clip, video: torch.Tensor) -> float:
    """vbench/background_consistency.py: every frame through CLIP in one batch."""
    images = CLIP_TRANSFORM(read_like_vbench(video))
    with torch.no_grad():
        features = F.normalize(clip(images), dim=-1, p=2)
    video_sim, first, former = 0.0, None, None
    for i in range(len(features)):
        feature = features[i].unsqueeze(0)
        if i == 0:
            first = feature
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, feature).item())
            sim_fir = max(0.0, F.cosine_similarity(first, feature).item())
            video_sim += (sim_pre + sim_fir) / 2
        former = feature
    return video_sim / (len(features) - 1)


# ---- loading ---------------------------------------------------------------------------------

def test_the_twins_have_the_official_names_and_keys(folder, verifiers):
    mine = (subject, background, DIMENSIONS["aesthetic_quality"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for m in mine for n, _ in m.FILES)
    state = torch.load(folder / "dino_vitbase16_pretrain.pth", weights_only=True)
    with torch.device("meta"):
        official = DinoViT().state_dict()  # ViT-B/16: 12 blocks of 768

    def families(keys):
        return {re.sub(r"\.\d+\.", ".#.", k) for k in keys}
    assert families(state) == families(official) and len(official) == 150
    dino = verifiers["subject_consistency"].model
    assert (dino.arch.dim, dino.arch.depth, dino.arch.patch, dino.arch.grid) == (64, 1, 16, 14)
    clip = verifiers["background_consistency"].model.tower.config
    assert (clip.hidden_size, clip.patch_size, clip.image_size, clip.projection_dim) == (64, 32, 224, 32)
    assert not dino.training and next(dino.parameters()).dtype == torch.float32


def test_a_missing_file_names_the_file_the_folder_and_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError, match=r"'dino_vitbase16_pretrain.pth' is not in "
                       + re.escape(str(tmp_path)) + r".*dl\.fbaipublicfiles\.com/dino/"):
        subject.load(tmp_path)
    with pytest.raises(CheckpointError, match=r"'clip-vit-base-patch32.safetensors' is not in .*"
                       r"huggingface\.co/openai/clip-vit-base-patch32/resolve/main/model\.safetensors"):
        background.load(tmp_path)
    with pytest.raises(ValueError, match="unknown VBench dimension.*'sharpness'"):
        load(["sharpness"], tmp_path)


def test_a_wrong_file_names_the_key(folder, tmp_path):
    from safetensors.torch import load_file, save_file
    dino = torch.load(folder / "dino_vitbase16_pretrain.pth", weights_only=True)
    for name, bad, key in (
            ("missing.pth", {k: v for k, v in dino.items() if k != "norm.bias"}, "norm.bias"),
            ("shape.pth", {**dino, "blocks.0.attn.proj.weight": torch.zeros(64, 32)},
             "blocks.0.attn.proj.weight"),
            ("other.pth", {"encoder.weight": torch.zeros(2)}, "cls_token")):
        torch.save(bad, tmp_path / name)
        with pytest.raises(CheckpointError, match=re.escape(key)):
            load_dino(tmp_path / name)
    clip = load_file(str(folder / "clip-vit-base-patch32.safetensors"))
    for name, bad, key in (
            ("noproj", {k: v for k, v in clip.items() if not k.startswith("visual_projection")},
             "visual_projection.weight"),
            ("size", {**clip, "vision_model.embeddings.position_embedding.weight": torch.zeros(65, 64)},
             "position_embedding.weight.*256 px.*224 px")):
        (tmp_path / name).mkdir()
        save_file(bad, str(tmp_path / name / "clip-vit-base-patch32.safetensors"))
        with pytest.raises(CheckpointError, match=key):
            background.load(tmp_path / name)


# ---- the definition -------------------------------------------------------------------------

@pytest.mark.parametrize("h, w", [(72, 128), (120, 90)])
def test_subject_consistency_is_vbenchs_frame_by_frame_computation(verifiers, h, w):
    verifier, batch = verifiers["subject_consistency"], clips(h, w)
    expected = [vbench_subject_consistency(verifier.model, batch.video[i]) for i in range(len(batch))]
    got = verifier(batch, [""] * 3)
    assert got.dtype == torch.float64 and got.shape == (3,)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)
    assert expected[0] < 0.9 and expected[0] < expected[1]  # the twin's features follow the frames


@pytest.mark.parametrize("h, w", [(72, 128), (120, 90)])
def test_background_consistency_is_vbenchs_computation(verifiers, h, w):
    verifier, batch = verifiers["background_consistency"], clips(h, w, seed=1)
    expected = [vbench_background_consistency(verifier.model, batch.video[i]) for i in range(len(batch))]
    got = verifier(batch, [""] * 3)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)
    assert expected[0] < 0.9


def test_a_still_clip_scores_1_and_chunks_change_nothing(verifiers):
    batch = clips(48, 64, frames=7)
    for v in verifiers.values():
        whole = v(batch, [""] * 3)
        torch.testing.assert_close(whole[2].item(), 1.0, atol=1e-6, rtol=0)
        v.chunk = 4  # 21 frames in chunks of 4, across clip boundaries
        try:
            torch.testing.assert_close(v(batch, [""] * 3), whole, atol=1e-6, rtol=0)
        finally:
            v.chunk = 32


def test_the_rule_clips_negative_similarities_at_0_and_needs_two_frames():
    f = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]]])
    # frame 1: previous -1 -> 0, first -1 -> 0; frame 2: previous 0, first 1: (0 + 0.5) / 2
    torch.testing.assert_close(consistency(f), torch.tensor([0.25], dtype=torch.float64))
    with pytest.raises(MediaError, match="2 frames at least, got 1"):
        consistency(torch.ones(2, 1, 4))


def test_uint8_frames_truncate_and_clamp_as_a_file_comfyui_wrote():
    """ComfyUI's video writers store clamp(x * 255).to(uint8): truncated, not rounded."""
    v = torch.tensor([1.4, 1.6, -3.0, 300.0, float("nan"), 255.0]) / 255
    u = uint8_frames(v.view(1, 2, 1, 1, 3))
    assert u.dtype == torch.uint8 and u.shape == (1, 2, 3, 1, 1)
    assert u.flatten().tolist() == [1, 1, 0, 255, 0, 255]
