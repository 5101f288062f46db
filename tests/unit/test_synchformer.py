"""Synchformer and DeSync on a tiny random twin in the published format, loaded by the real
loader. The twin cannot know sync, so these test the definition: the benchmark's preprocessing
and reduction re-computed loop by loop here, known offsets read by an oracle in the model's
place, the first and last 4.8 s windows, short and long clips, wrong files."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from torchvision.transforms import v2

from comfyui_avits.core.batch import MediaError
from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.verifiers import AVBatch
from comfyui_avits.verifiers.synchformer import DeSync, Synchformer, load_synchformer
from comfyui_avits.verifiers.synchformer import preprocess as P

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_synchformer  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_synchformer.write(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def model(ckpt):
    return load_synchformer(ckpt)


def clips(seconds: float, fps: float = 25.0, sr: int = 16000, n: int = 1, channels: int = 1,
          seed: int = 0) -> AVBatch:
    g = torch.Generator().manual_seed(seed)
    return AVBatch(torch.rand(n, round(seconds * fps), 18, 30, 3, generator=g), fps,
                   0.3 * torch.randn(n, channels, round(seconds * sr), generator=g), sr)


# ---- loading ---------------------------------------------------------------------------------

def test_the_twin_has_the_official_keys_and_loads_through_the_real_path(ckpt, model):
    state = torch.load(ckpt, weights_only=True)
    with torch.device("meta"):
        official = Synchformer().state_dict()
    assert ckpt.name == "synchformer_state_dict.pth"
    assert len(official) == 513  # the published model's tensors (synchformer.md section 5)

    def families(keys):  # the key names with layer numbers left out (the twin is 1 layer deep)
        return {re.sub(r"\.\d+\.", ".#.", k) for k in keys}
    assert families(state) == families(official)
    assert state["transformer.pos_emb_cfg.pos_emb"].shape == (1, 198, 96)
    assert (model.arch.video_dim, model.arch.audio_dim, model.arch.dim) == (64, 64, 96)
    assert (model.arch.segments, model.arch.classes, model.arch.video_depth) == (14, 21, 1)
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_a_wrong_file_is_a_checkpoint_error_naming_the_key(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    cases = {"missing.pth": ({k: v for k, v in state.items() if k != "aproj.bias"}, "aproj.bias"),
             "shape.pth": ({**state, "vproj.weight": torch.zeros(96, 32)}, "vproj.weight"),
             "other.pth": ({"encoder.weight": torch.zeros(2)}, "vfeat_extractor.cls_token"),
             "classes.pth": ({**state, "transformer.off_head.weight": torch.zeros(5, 96)},
                             "transformer.off_head.weight")}
    for name, (bad, key) in cases.items():
        torch.save(bad, tmp_path / name)
        with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
            load_synchformer(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="github.com/hkchengrex/MMAudio"):
        load_synchformer(tmp_path / "absent.pth")


# ---- the definition, re-computed loop by loop --------------------------------------------------

def ffmpeg_fps_index(count: int, fps: float, n: int) -> int:
    """FFmpeg's fps filter: output frame n shows the newest input frame whose timestamp,
    rounded half up to the 1/25 s grid, is at most n."""
    best = 0
    for i in range(count):
        if math.floor(i * 25 / fps + 0.5) <= n:
            best = i
    return best


def reference_desync(model, batch: AVBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-clip DeSync, [N, 2, 21] logits) as av-benchmark computes them for files of this
    content and its --audio_length: every segment extracted, then the first and last 14."""
    seconds = min(batch.video_seconds, batch.audio_seconds)
    frames25 = int(25 * seconds + 1e-9)
    transform = v2.Compose([v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC),
                            v2.CenterCrop(224), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400, hop_length=160,
                                               n_fft=1024, n_mels=128)
    grid = torch.from_numpy(np.linspace(-2, 2, 21)).float()
    scores, all_logits = [], []
    for i in range(len(batch)):
        src = (batch.video[i] * 255).clamp(0, 255).to(torch.uint8).permute(0, 3, 1, 2)
        frames = src[[ffmpeg_fps_index(src.shape[0], batch.fps, n) for n in range(frames25)]]
        x = transform(frames)
        vsegs = [x[s:s + 16] for s in range(0, frames25 - 16 + 1, 8)]
        wav = batch.audio[i].mean(0)
        if batch.sample_rate != 16000:
            wav = torchaudio.transforms.Resample(batch.sample_rate, 16000)(wav)
        wav = wav[:int(16000 * frames25 / 25)]
        asegs = torch.stack([wav[s:s + 10240] for s in range(0, wav.shape[0] - 10240 + 1, 5120)])
        m = torch.log(mel(asegs) + 1e-6)
        m = torch.nn.functional.pad(m, (0, 66 - m.shape[-1]), value=0.0)
        m = (m - -4.2677393) / (2 * 4.5689974)
        with torch.no_grad():
            vf = model.extract_vfeats(torch.stack(vsegs)[None])
            af = model.extract_afeats(m[None, :, None])
            assert vf.shape[1] == af.shape[1]
            logits = torch.cat([model.compare_v_a(vf[:, :14], af[:, :14]),
                                model.compare_v_a(vf[:, -14:], af[:, -14:])])
        values = [abs(grid[int(torch.argmax(row))].item()) for row in logits]
        scores.append(float(np.mean(values)))
        all_logits.append(logits)
    return torch.tensor(scores, dtype=torch.float64), torch.stack(all_logits)


def test_desync_is_the_benchmarks_computation_at_24_fps_and_48_khz_stereo(model):
    batch = clips(5.2, fps=24.0, sr=48000, n=2, channels=2)
    expected, expected_logits = reference_desync(model, batch)
    verifier = DeSync(model)
    logits = verifier.window_logits(batch)
    assert logits.shape == (2, 2, 21)
    torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=1e-4)
    rewards = verifier(batch, [""])
    assert set(rewards) == {"desync"} and rewards["desync"].dtype == torch.float64
    torch.testing.assert_close(rewards["desync"], -expected)


def test_the_25_fps_frames_are_ffmpegs(model):
    for count, fps in ((48, 24.0), (100, 50.0), (60, 25.0), (90, 29.97), (30, 12.0)):
        n25 = P.frames_at_25(count, fps)
        assert P.source_indices(count, fps, n25) == [ffmpeg_fps_index(count, fps, n) for n in range(n25)]


class Oracle(torch.nn.Module):
    """In the model's place: reads the one flash and the one click of each window off the
    segments and puts the logit peak on the class nearest their offset (video time - sound
    time: positive when the sound comes early), as a perfect Synchformer would."""

    arch = Synchformer.__init__.__defaults__[0]

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def extract_vfeats(self, video):  # [B, S, 16, 3, 224, 224] -> brightness per frame
        return video.mean(dim=(3, 4, 5))[..., None]

    def extract_afeats(self, mel):  # [B, S, 1, 128, 66] -> loudness per mel frame (10 ms)
        return mel[:, :, 0, :, :65].mean(dim=2)[..., None]

    def compare_v_a(self, video, audio):
        def event(x: torch.Tensor, step: float) -> torch.Tensor:
            b, s, t = x.shape[:3]
            where = x.reshape(b, s * t).argmax(1)
            return (where // t) * 0.32 + (where % t) * step
        offset = event(video, 0.04) - event(audio, 0.01)
        grid = torch.linspace(-2, 2, 21)
        return -(grid[None] - offset[:, None]) ** 2


def flash_and_click(events: list[tuple[float, float]], seconds: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark frames with a flash at each event's time; silence with a 10 ms click ``lead``
    seconds before it (the sound early by ``lead``)."""
    video = torch.full((round(25 * seconds), 12, 16, 3), 0.1)
    audio = torch.zeros(1, round(16000 * seconds))
    for t, lead in events:
        video[round(25 * t)] = 0.9
        start = round(16000 * (t - lead))
        audio[0, start:start + 160] = 0.8
    return video, audio


def test_known_offsets_give_the_mean_absolute_offset_of_the_first_and_last_window():
    # 8 s: the first window is 0-4.8 s, the last 3.2-8.0 s; one event in each
    cases = [((2.0, 0.4), (6.0, -0.6)), ((2.0, 0.0), (6.0, 0.0)), ((1.2, 1.0), (7.0, 0.2)),
             ((1.0, -2.0), (6.4, 1.6))]
    pairs = [flash_and_click(list(c)) for c in cases]
    batch = AVBatch(torch.stack([v for v, _ in pairs]), 25.0, torch.stack([a for _, a in pairs]), 16000)
    rewards = DeSync(Oracle(), ("desync", "sync_prob"))(batch, [""])
    expected = torch.tensor([(abs(a) + abs(b)) / 2 for (_, a), (_, b) in cases], dtype=torch.float64)
    torch.testing.assert_close(rewards["desync"], -expected, atol=1e-6, rtol=0)
    assert rewards["desync_sync_prob"][1] > rewards["desync_sync_prob"][0]
    assert -rewards["desync"].mean().item() == pytest.approx(0.725, abs=1e-6)  # the benchmark's number


# ---- windows and clip lengths ------------------------------------------------------------------

def test_only_the_first_and_last_window_count_in_a_long_clip(model):
    verifier = DeSync(model)
    base = clips(12.0)  # 36 segments: windows 0-4.8 s and 7.04-11.84 s
    logits = verifier.window_logits(base)
    middle_v, middle_a = base.video.clone(), base.audio.clone()
    middle_v[:, 5 * 25:7 * 25] = 0.5
    middle_a[:, :, 5 * 16000:7 * 16000] = 0.0
    assert torch.equal(verifier.window_logits(AVBatch(middle_v, 25.0, middle_a, 16000)), logits)
    late_v, late_a = base.video.clone(), base.audio.clone()
    late_v[:, 10 * 25:] = 0.5
    late_a[:, :, 10 * 16000:] = 0.0
    late = verifier.window_logits(AVBatch(late_v, 25.0, late_a, 16000))
    assert torch.equal(late[:, 0], logits[:, 0]) and not torch.allclose(late[:, 1], logits[:, 1])


def test_a_clip_under_one_window_is_an_error_naming_its_length_or_padded_as_documented(model):
    short = clips(4.0)
    with pytest.raises(MediaError, match=r"at least 4\.8 s.*lasts 4 s.*short_clips"):
        DeSync(model)(short, [""])
    padded = DeSync(model, short_clips="pad")
    by_hand = AVBatch(torch.cat([short.video, short.video[:, -1:].expand(-1, 20, -1, -1, -1)], 1), 25.0,
                      torch.nn.functional.pad(short.audio, (0, 12800)), 16000)
    assert padded.window_logits(short).shape == (1, 1, 21)  # 4.8 s: one window, scored once
    torch.testing.assert_close(padded.window_logits(short), DeSync(model).window_logits(by_hand))
    assert torch.isfinite(padded(clips(0.5), [""])["desync"]).all()


def test_batched_scores_equal_one_clip_at_a_time(model):
    batch = clips(5.0, n=3, seed=3)
    verifier = DeSync(model, ("desync", "sync_prob"), chunk=7)
    together = verifier.window_logits(batch)
    alone = torch.cat([verifier.window_logits(batch.clip(i)) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    assert verifier.rewards == ("desync", "desync_sync_prob")
    assert verifier.identity.startswith("desync:desync[desync,sync_prob](synchformer ")
    assert verifier.models() == [model]
