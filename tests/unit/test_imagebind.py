"""ImageBind verifiers on tiny random checkpoints in the published format, loaded by the real
loader: JavisScore, AVHScore and TV/TA/AV-IB against loop-by-loop re-computations of the
reference procedure written here, one embedding pass shared by every score, bad input."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from comfyui_avits.core.batch import MediaError
from comfyui_avits.verifiers import AVBatch, AVHScore, ImageBindScore, JavisScore
from comfyui_avits.verifiers.imagebind import CheckpointError, embedder, load_imagebind
from comfyui_avits.verifiers.frames import CLIP_MEAN, CLIP_STD
from comfyui_avits.verifiers.imagebind import preprocess as P
from comfyui_avits.verifiers.imagebind.checkpoint import architecture
from comfyui_avits.verifiers.imagebind.package import model_module, tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_imagebind  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_imagebind.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def model(ckpt):
    return load_imagebind(ckpt)


def clip(seconds: float, fps: float, sr: int = 16000, n: int = 1, channels: int = 1, seed: int = 0,
         size=(64, 80)) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    t, s = max(1, round(seconds * fps)), max(1, round(seconds * sr))
    return AVBatch(torch.rand(n, t, *size, 3, generator=g), fps,
                   0.2 * torch.randn(n, channels, s, generator=g), sr)


# ---- loading ---------------------------------------------------------------------------------

def test_the_architecture_is_read_off_the_checkpoint(ckpt, model):
    state = torch.load(ckpt, weights_only=True)
    arch = architecture(state)
    assert arch["vision_embed_dim"] == 80 and arch["vision_num_heads"] == 1
    assert arch["out_embed_dim"] == 32 and arch["audio_num_blocks"] == 1
    assert isinstance(model, model_module().ImageBindModel) and not model.training
    # the published Huge widths (imagebind_huge()), one block each to build quickly: the head
    # counts read off them are Huge's
    huge = model_module().ImageBindModel(
        vision_embed_dim=1280, text_embed_dim=1024, out_embed_dim=1024, **{
            f"{m}_num_blocks": 1 for m in ("vision", "text", "audio", "depth", "thermal", "imu")},
        vision_num_heads=16, text_num_heads=16).state_dict()
    arch = architecture(huge)
    assert (arch["vision_embed_dim"], arch["vision_num_heads"]) == (1280, 16)
    assert (arch["text_embed_dim"], arch["text_num_heads"]) == (1024, 16)
    assert [arch[f"{m}_num_heads"] for m in ("audio", "depth", "thermal", "imu")] == [12, 8, 12, 8]
    assert arch["out_embed_dim"] == 1024 and arch["vision_num_blocks"] == 1


def test_bad_checkpoints_say_what_is_wrong(ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match="dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"):
        load_imagebind(tmp_path / "imagebind_huge.pth")
    state = torch.load(ckpt, weights_only=True)
    state["modality_heads.audio.2.weight"] = torch.zeros(16, 64)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="does not fit.*modality_heads.audio.2.weight"):
        load_imagebind(tmp_path / "wrong.pth")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not an ImageBind state dict"):
        load_imagebind(tmp_path / "other.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_imagebind(tmp_path / "list.pth")


# ---- preprocessing ---------------------------------------------------------------------------

def test_frames_follow_the_reference_pil_pipeline():
    import torchvision.transforms as T
    from PIL import Image
    g = torch.Generator().manual_seed(3)
    mean, std = torch.tensor(CLIP_MEAN)[:, None, None], torch.tensor(CLIP_STD)[:, None, None]
    reference = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC),
                           T.CenterCrop(224), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    for h, w in ((90, 120), (120, 90), (300, 301), (20, 12)):
        frame = torch.rand(1, h, w, 3, generator=g)
        pil = Image.fromarray((frame[0] * 255).byte().numpy())  # 8 bits, truncated
        assert torch.allclose(P.images(frame)[0], reference(pil), atol=1e-6), (h, w)
    exact = torch.rand(1, 224, 224, 3, generator=g)  # already 224 x 224: not resampled
    back = P.images(exact)[0] * std + mean
    assert torch.allclose(back, (exact[0] * 255).floor().permute(2, 0, 1) / 255, atol=1e-6)


def test_fbank_is_the_reference_kaldi_call_cut_or_padded_to_204():
    g = torch.Generator().manual_seed(1)
    stereo = torch.randn(2, 40000, generator=g) + torch.tensor([[0.3], [-1.0]])
    x = stereo - stereo.mean()  # mean over every channel, then channel 0
    ref = torchaudio.compliance.kaldi.fbank(x[:1], htk_compat=True, sample_frequency=16000,
                                            use_energy=False, window_type="hanning",
                                            num_mel_bins=128, dither=0.0, frame_length=25,
                                            frame_shift=10).T[:, :204]
    assert torch.allclose(P.fbank(stereo)[0], (ref + 4.268) / 9.138, atol=1e-5)
    short = P.fbank(torch.randn(1, 8000, generator=g))  # 0.5 s: 48 frames, zero-padded
    assert short.shape == (1, 128, 204) and torch.allclose(short[0, :, 48:], torch.tensor(4.268 / 9.138))
    assert not torch.allclose(short[0, :, 47], torch.tensor(4.268 / 9.138))


def test_overlapping_clips_see_the_earlier_clips_mean_shift_as_in_the_reference():
    g = torch.Generator().manual_seed(4)
    wave = torch.randn(1, 48000, generator=g) + torch.linspace(0, 2, 48000)  # 3 s, drifting mean
    before = wave.clone()
    got = P.audio_clips(wave)
    independent = torch.stack([P.fbank(wave[:, int(s * 16000):int((s + 2) * 16000)])
                               for s in P.clip_starts(3.0, 3)])
    assert torch.allclose(got[0], independent[0], atol=1e-4)  # the first clip sees no shift
    assert not torch.allclose(got[1], independent[1], atol=1e-3)  # the second overlaps the first
    assert torch.equal(wave, before)  # the caller's waveform is untouched


def test_windows_and_clips_follow_the_reference_rules():
    assert P.window_starts(102, 48, 12) == [0, 12, 24, 36, 48, 54]  # 4.25 s at 24 fps
    assert P.window_starts(68000, 32000, 8000) == [0, 8000, 16000, 24000, 32000, 36000]
    assert P.window_starts(48, 48, 12) == [0]
    assert P.clip_starts(4.0, 3) == [0, Fraction(2, 3), Fraction(4, 3)]
    assert P.clip_starts(1.0, 5) == [0] * 5


# ---- the scores against the procedure, loop by loop -----------------------------------------

def _embed_one(model, modality, x):
    with torch.no_grad():
        return model({modality: x[None]})[modality][0]


def _cos(a, b):
    return float(F.cosine_similarity(a, b, dim=0, eps=1e-6))


def _audio_16k(batch, i):
    a = batch.audio[i].float()
    if batch.sample_rate != 16000:
        a = torchaudio.functional.resample(a, batch.sample_rate, 16000)
    return a


def _whole_audio(model, a):
    """The 3-clip rule, one clip at a time: starts k * max(D - 2, 0) / 3, each clip's mean
    subtracted in place on the waveform (the reference's waveform2melspec on a view)."""
    d = a.shape[-1] / 16000
    a = a.clone()
    clips = []
    for k in range(3):
        start = Fraction(max(d - 2, 0)) * k / 3
        view = a[:, int(start * 16000):int((start + 2) * 16000)]
        view -= view.mean()
        clips.append(P.fbank(view))
    return _embed_one(model, "audio", torch.stack(clips))


def _javisscore_by_hand(model, batch, i):
    fps = batch.fps
    frames = [_embed_one(model, "vision", P.images(batch.video[i, j:j + 1])[0])
              for j in range(batch.video.shape[1])]
    a = _audio_16k(batch, i)
    w, stride = int(2.0 * fps), int(2.0 * fps) - int(1.5 * fps)
    if len(frames) <= w or a.shape[-1] <= 32000:
        windows = [(frames, _whole_audio(model, a))]
    else:
        def starts(n, size, step):
            out, s = [], 0
            while True:
                out.append(min(s, n - size))
                if out[-1] + size >= n:
                    return out
                s += step
        vs, aus = starts(len(frames), w, stride), starts(a.shape[-1], 32000, 8000)
        m = min(len(vs), len(aus))
        windows = []
        for v0, a0 in zip(vs[:m], aus[:m]):
            same = P.fbank(a[:, a0:a0 + 32000])
            windows.append((frames[v0:v0 + w], _embed_one(model, "audio", torch.stack([same] * 3))))
    scores = []
    for fs, emb in windows:
        cos = sorted(_cos(f, emb) for f in fs)
        k = max(1, int(0.4 * len(cos)))
        scores.append(sum(cos[:k]) / k)
    return sum(scores) / len(scores), len(windows)


@pytest.mark.parametrize("seconds,fps,sr,channels", [
    (1.5, 24.0, 16000, 1),     # shorter than a window: one window, the whole clip's audio
    (2.0, 24.0, 16000, 1),     # exactly one window
    (4.25, 24.0, 16000, 1),    # the reference's example: 6 windows of 48 frames, k = 19
    (3.1, 15.5, 48000, 2),     # odd fps, 48 kHz stereo (resampled, the reference's channel rule)
    (1 / 24, 24.0, 16000, 1),  # a single frame
])
def test_javisscore_and_avhscore_equal_the_procedure_loop_by_loop(model, seconds, fps, sr, channels):
    batch = clip(seconds, fps, sr, n=2, channels=channels, seed=round(seconds * 100))
    js = JavisScore(model)(batch, ["", ""])
    ah = AVHScore(model)(batch, ["", ""])
    assert js.shape == ah.shape == (2,)
    for i in range(2):
        expect, windows = _javisscore_by_hand(model, batch, i)
        if seconds == 4.25:
            assert windows == 6
        assert float(js[i]) == pytest.approx(expect, abs=1e-5)
        audio = _whole_audio(model, _audio_16k(batch, i))
        frames = [_embed_one(model, "vision", P.images(batch.video[i, j:j + 1])[0])
                  for j in range(batch.video.shape[1])]
        assert float(ah[i]) == pytest.approx(sum(_cos(f, audio) for f in frames) / len(frames), abs=1e-5)


def _video_by_hand(model, frames, fps):
    """5 clips of 2 s, 2 frames each, short side 224 (bilinear), 3 crops: 15 views averaged."""
    n, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
    x = (frames * 255).floor().permute(0, 3, 1, 2) / 255
    views = []
    for k in range(5):
        start = Fraction(max(n / fps - 2, 0)) * k / 5
        inside = [i for i in range(n) if start <= Fraction(i) / Fraction(fps) < start + 2]
        two = x[[inside[0], inside[-1]]]
        nh, nw = (224, math.floor(w / h * 224)) if w >= h else (math.floor(h / w * 224), 224)
        two = F.interpolate(two, size=(nh, nw), mode="bilinear", align_corners=False)
        two = (two - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
        for left in (0, math.ceil((nw - 224) / 2), nw - 224):
            views.append(two[:, :, :, left:left + 224].permute(1, 0, 2, 3))
    return torch.stack([_embed_one(model, "vision", v[None]) for v in views]).mean(0)


def test_tv_ta_av_equal_the_procedure_loop_by_loop(model):
    batch = clip(4.25, 24.0, n=2, seed=5)
    prompts = ["a dog barking", "rain on a window"]
    got = ImageBindScore(model)(batch, prompts)
    assert set(got) == {"tv_ib", "ta_ib", "av_ib"}
    for i in range(2):
        # the model's own mean over views is the same as averaging normalised view embeddings
        with torch.no_grad():
            video = model({"vision": torch.stack([v for v in P.video_views(batch.video[i], 24.0)])[None]})["vision"][0]
        by_hand = _video_by_hand(model, batch.video[i], 24.0)
        assert torch.allclose(video, by_hand, atol=1e-5)
        text = _embed_one(model, "text", tokenizer()(prompts[i]))
        audio = _whole_audio(model, _audio_16k(batch, i))
        assert float(got["tv_ib"][i]) == pytest.approx(_cos(text, by_hand), abs=1e-5)
        assert float(got["ta_ib"][i]) == pytest.approx(_cos(text, audio), abs=1e-5)
        assert float(got["av_ib"][i]) == pytest.approx(_cos(audio, by_hand), abs=1e-5)


# ---- one embedding pass for the whole verifier set ------------------------------------------

def test_one_embedding_pass_feeds_every_score_and_batches_every_candidate(model):
    calls = {"vision": 0, "audio": 0, "text": 0}

    def count(m):
        def hook(mod, args, out):
            calls[m] += 1
        return hook

    hooks = [model.modality_trunks[m].register_forward_hook(count(m)) for m in calls]
    try:
        batch = clip(4.25, 24.0, n=3, seed=9)
        scores = [JavisScore(model), AVHScore(model), ImageBindScore(model, ("av",))]
        for v in scores:
            v(batch, [""] * 3)
        # frames (3 x 102 = 306 images in chunks of 64) and the 15 views of each clip: vision;
        # the whole-clip audio (3 x 3 clips) and all 18 windows: audio, each embedded once
        assert calls == {"vision": math.ceil(306 / 64) + 1, "audio": 2, "text": 0}
        assert {v.embedder for v in scores} == {embedder(model)}
        one = [JavisScore(model)(batch.clip(i), [""]) for i in range(3)]
        assert torch.allclose(scores[0](batch, [""] * 3), torch.cat(one), atol=1e-6)
    finally:
        for h in hooks:
            h.remove()


def test_identity_names_the_weights(model, ckpt, tmp_path):
    other = tiny_imagebind.build(seed=1)
    assert JavisScore(model).identity != JavisScore(other).identity
    assert JavisScore(model).identity == JavisScore(load_imagebind(ckpt)).identity
    assert JavisScore(model).models() == [model]


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_media_is_a_clear_error_or_a_correct_score(model):
    with pytest.raises(MediaError, match="audio is empty"):
        AVBatch(torch.rand(1, 24, 32, 32, 3), 24.0, torch.zeros(1, 1, 0), 16000)
    with pytest.raises(MediaError, match="trim or pad"):
        AVBatch(torch.rand(1, 96, 32, 32, 3), 24.0, torch.zeros(1, 1, 16000), 16000)
    tiny = clip(2.5, 24.0, size=(20, 12), seed=2)  # smaller than 224: upscaled
    silent = AVBatch(tiny.video, 24.0, torch.zeros_like(tiny.audio), 16000)
    for b in (tiny, silent):
        for v in (JavisScore(model), AVHScore(model)):
            assert torch.isfinite(v(b, [""])).all()
        assert all(torch.isfinite(t).all() for t in ImageBindScore(model)(b, [""]).values())
    with pytest.raises(ValueError, match="metrics must be some of"):
        ImageBindScore(model, ("xy",))
