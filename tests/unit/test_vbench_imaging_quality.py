"""VBench's imaging quality (MUSIQ on SPAQ) on a tiny random twin in the published format, loaded
by the real loader. The twin knows nothing of quality, so these test the definition: VBench's
frame transform, MUSIQ's multi-scale patches and its forward pass re-computed here frame by frame
from the state dict in the most literal form, the mean over frames and the division by 100; odd
frame sizes; wrong and missing files."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms

from comfyui_avits.core.batch import MediaError
from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.vbench import imaging_quality as IQ
from comfyui_avits.verifiers.vbench.musiq import MUSIQ

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_musiq  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_musiq.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def dimension(ckpt):
    return IQ.load(ckpt.parent)


def clips(n: int, t: int, h: int, w: int, seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    return AVBatch(torch.rand(n, t, h, w, 3, generator=g), 8.0, torch.zeros(n, 1, 1000 * t), 8000)


# ---- loading ---------------------------------------------------------------------------------

def test_the_twin_has_the_official_layout_and_loads_through_the_real_path(ckpt, dimension):
    state = torch.load(ckpt, weights_only=True)
    with torch.device("meta"):
        official = MUSIQ().state_dict()
    assert ckpt.parent.name == "vbench" and ckpt.name == "musiq_spaq_ckpt-358bb6af.pth"
    assert IQ.FILES == (("musiq_spaq_ckpt-358bb6af.pth", "https://github.com/chaofengc/IQA-PyTorch/"
                         "releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth"),)
    assert len(official) == 248  # pyiqa's MUSIQ: 248 tensors, 27.1 M parameters

    def families(keys):  # key names with the layer numbers left out (the twin is 2 layers deep)
        return {re.sub(r"encoderblock_\d+", "encoderblock_#", k) for k in keys}
    assert families(state) == families(official)
    assert state["head.weight"].shape == (1, 128)  # SPAQ's one score
    model = dimension.model
    assert (model.arch.patch, model.arch.hidden, model.arch.heads, model.arch.layers) == (16, 128, 2, 2)
    assert (model.arch.mlp, model.arch.grid, model.arch.scales) == (64, 10, 3)
    assert not model.training and dimension.models() == [model]
    assert dimension.name == IQ.NAME == "imaging_quality"
    assert dimension.identity.startswith("imaging_quality:") and len(dimension.identity) > 20


def test_a_wrong_file_is_a_checkpoint_error_naming_the_key(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    cases = {"missing": ({k: v for k, v in state.items() if k != "block1.gn3.bias"}, "block1.gn3.bias"),
             "shape": ({**state, "transformer_encoder.cls": torch.zeros(1, 1, 64)},
                       "transformer_encoder.cls"),
             "other": ({"encoder.weight": torch.zeros(2)}, "head.weight"),
             "ava": ({**{k: v for k, v in state.items() if not k.startswith("head.")},
                      "head.0.weight": torch.zeros(10, 128), "head.0.bias": torch.zeros(10)}, "head.0.weight"),
             "scales": ({**state, "transformer_encoder.scaleembed_input.scale_emb": torch.zeros(2, 128)},
                        "scale_emb")}
    for name, (bad, key) in cases.items():
        (tmp_path / name).mkdir()
        torch.save(bad, tmp_path / name / IQ.FILE)
        with pytest.raises(CheckpointError, match=re.escape(key)):
            IQ.load(tmp_path / name)
    (tmp_path / "wrapped").mkdir()  # a DataParallel save loads, as pyiqa reads it
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "wrapped" / IQ.FILE)
    assert IQ.load(tmp_path / "wrapped").model.arch.hidden == 128


def test_a_missing_file_names_the_file_the_folder_and_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError) as e:
        IQ.load(tmp_path)
    message = str(e.value)
    assert IQ.FILE in message and str(tmp_path) in message and IQ.PUBLISHED in message


# ---- the definition, re-computed frame by frame ------------------------------------------------

def vbench_transform(images: torch.Tensor) -> torch.Tensor:
    """VBench's imaging_quality transform in its default 'longer' mode, as written there."""
    _, _, h, w = images.size()
    if max(h, w) > 512:
        scale = 512. / max(h, w)
        images = transforms.Resize(size=(int(scale * h), int(scale * w)), antialias=False)(images)
    return images / 255.


def patches_of(image: torch.Tensor, p: int, grid: int, scale_id: int, length: int | None) -> list[tuple]:
    """(patch [3, p, p], hashed position, scale id, valid) of one [3, h, w] image, row by row."""
    _, h, w = image.shape
    rows, cols = math.ceil(h / p), math.ceil(w / p)
    pad_h, pad_w = rows * p - h, cols * p - w  # TF 'SAME': the odd pixel at the bottom / right
    canvas = torch.zeros(3, rows * p, cols * p)
    canvas[:, pad_h // 2:pad_h // 2 + h, pad_w // 2:pad_w // 2 + w] = image
    out = []
    for r in range(rows):
        for c in range(cols):
            cell = min(r * grid // rows, grid - 1) * grid + min(c * grid // cols, grid - 1)
            out.append((canvas[:, r * p:(r + 1) * p, c * p:(c + 1) * p], cell, scale_id, True))
    while length is not None and len(out) < length:
        out.append((torch.zeros(3, p, p), 0, 0, False))
    return out


def std_conv(x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    k, (h, w) = weight.shape[-1], x.shape[-2:]
    pad_h = (math.ceil(h / stride) - 1) * stride + k - h
    pad_w = (math.ceil(w / stride) - 1) * stride + k - w
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    mean = weight.mean(dim=(1, 2, 3), keepdim=True)
    std = weight.std(dim=(1, 2, 3), keepdim=True)
    return F.conv2d(x, (weight - mean) / (std + 1e-5), stride=stride)


def musiq_score(s: dict, image: torch.Tensor, heads: int) -> float:
    """MUSIQ's score of one [3, h, w] image in 0..1, from the state dict ``s``."""
    x = (image - 0.5) * 2
    p = round(4 * math.sqrt(s["embedding.weight"].shape[1] / 256))
    grid = round(math.sqrt(s["transformer_encoder.posembed_input.position_emb"].shape[1]))
    h, w = x.shape[-2:]
    tokens = []
    for scale_id, longer in enumerate([224, 384]):
        rh, rw = round(h * longer / max(h, w)), round(w * longer / max(h, w))
        resized = F.interpolate(x[None], (rh, rw), mode="bicubic", align_corners=False)[0]
        tokens += patches_of(resized, p, grid, scale_id, math.ceil(longer / p) ** 2)
    tokens += patches_of(x, p, grid, 2, None)

    def gn(x, name, eps):
        return F.group_norm(x, 32, s[name + ".weight"], s[name + ".bias"], eps)

    embeddings = []
    for patch, cell, scale_id, _ in tokens:
        y = F.relu(gn(std_conv(patch[None], s["conv_root.weight"], 2), "gn_root", 1e-6))
        pad = (math.ceil(y.shape[-1] / 2) - 1) * 2 + 3 - y.shape[-1]
        y = F.max_pool2d(F.pad(y, (pad // 2, pad - pad // 2) * 2), 3, 2)
        skip = gn(std_conv(y, s["block1.conv_proj.weight"], 1), "block1.gn_proj", 1e-4)
        z = F.relu(gn(std_conv(y, s["block1.conv1.weight"], 1), "block1.gn1", 1e-4))
        z = F.relu(gn(std_conv(z, s["block1.conv2.weight"], 1), "block1.gn2", 1e-4))
        y = F.relu(gn(std_conv(z, s["block1.conv3.weight"], 1), "block1.gn3", 1e-4) + skip)
        e = F.linear(y[0].permute(1, 2, 0).flatten(), s["embedding.weight"], s["embedding.bias"])
        e = (e + s["transformer_encoder.posembed_input.position_emb"][0, cell]
             + s["transformer_encoder.scaleembed_input.scale_emb"][scale_id])
        embeddings.append(e)
    x = torch.stack([s["transformer_encoder.cls"][0, 0]] + embeddings)
    valid = [True] + [t[3] for t in tokens]
    pairs = torch.tensor([[r and c for c in valid] for r in valid])  # both ends real, else -1e3
    dim = x.shape[-1]
    for i in range(len({k.split(".")[2] for k in s if ".encoderblock_" in k})):
        b = f"transformer_encoder.transformer.encoderblock_{i}."

        def lin(v, name):
            return F.linear(v, s[b + name + ".weight"], s[b + name + ".bias"])

        y = F.layer_norm(x, (dim,), s[b + "norm1.weight"], s[b + "norm1.bias"], 1e-6)
        q, k, v = lin(y, "attention.query"), lin(y, "attention.key"), lin(y, "attention.value")
        d = dim // heads
        out = []
        for head in range(heads):
            qh, kh, vh = (t[:, head * d:(head + 1) * d] for t in (q, k, v))
            logits = (qh @ kh.T / math.sqrt(d)).masked_fill(~pairs, -1e3)
            out.append(logits.softmax(-1) @ vh)
        x = x + lin(torch.cat(out, -1), "attention.out")
        y = F.layer_norm(x, (dim,), s[b + "norm2.weight"], s[b + "norm2.bias"], 1e-6)
        x = x + lin(F.gelu(lin(y, "mlp.fc1")), "mlp.fc2")
    cls = F.layer_norm(x[0], (dim,), s["transformer_encoder.encoder_norm.weight"],
                       s["transformer_encoder.encoder_norm.bias"], 1e-6)
    return float(F.linear(cls, s["head.weight"], s["head.bias"]))


@pytest.mark.parametrize("n, t, h, w", [(2, 2, 37, 53), (1, 2, 24, 520)])
def test_the_batched_dimension_is_vbench_frame_by_frame(ckpt, dimension, n, t, h, w):
    """37 x 53: no resize, patches that do not tile the frame; 24 x 520: VBench shrinks it to
    23 x 512 first."""
    s = torch.load(ckpt, weights_only=True)
    batch = clips(n, t, h, w, seed=h)
    got = dimension(batch, [""] * n)
    want = []
    with torch.no_grad():
        for clip in batch.video:
            frames = (clip * 255).clamp(0, 255).to(torch.uint8).permute(0, 3, 1, 2)
            images = vbench_transform(frames)
            assert images.shape[-2:] == ((h, w) if max(h, w) <= 512 else (23, 512))
            scores = [musiq_score(s, images[i], heads=dimension.model.arch.heads) for i in range(len(images))]
            want.append(sum(scores) / len(scores) / 100.)
    want = torch.tensor(want, dtype=torch.float64)
    assert got.dtype == torch.float64 and got.shape == (n,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    frame_scores = dimension.model(vbench_transform(frames))
    assert frame_scores.std() > 1e-3  # the twin's score follows the frame


def test_the_dtype_is_the_callers_and_thin_frames_are_a_clear_error(ckpt, dimension):
    batch = clips(2, 2, 20, 30, seed=1)
    double = IQ.load(ckpt.parent, dtype=torch.float64)
    assert next(double.model.parameters()).dtype == torch.float64
    torch.testing.assert_close(double(batch, ["", ""]), dimension(batch, ["", ""]), rtol=1e-5, atol=1e-7)
    with pytest.raises(MediaError, match="1x600 frame is too thin"):
        dimension(clips(1, 1, 1, 600), [""])
    with pytest.raises(ValueError, match="too thin for MUSIQ"):
        dimension(clips(1, 1, 2, 600), [""])
