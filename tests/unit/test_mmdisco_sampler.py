"""MMDisCo's coupling, joint sampler and generator on tiny random twins in the official formats
(the coupling state dict, VideoCrafter2's model.ckpt, the auffusion-full folder), loaded by the
real loaders: the discriminator's key names, one joint step against a term-by-term
re-computation, autograd under inference mode, per-candidate streams (alone = in a batch, split
runs, Best-of-N = naive seed + k), mutation, EvoSearch.

The multi-step search tests pair the real tiny VideoCrafter2 and coupling with a cheap audio
model of the same interface (FakeAudio): the tiny Auffusion's UNet always runs the 128 padded
latent frames (10.24 s), seconds per call on 2 CPU cores, so it is used where few calls are made.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from comfyui_avits.core.batch import AVBatch
from comfyui_avits.generators.mmdisco import MMDisCoGenerator, load_discriminator
from comfyui_avits.generators.mmdisco.auffusion import load_auffusion
from comfyui_avits.generators.mmdisco.discriminator import (PUBLISHED, DiscriminatorSizes,
                                                            MultimodalDiscriminator, sizes_of)
from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.generators.mmdisco.sampler import (AUDIO_COND, AUDIO_NOISE, AUDIO_UNCOND,
                                                      VIDEO_COND, VIDEO_NOISE, VIDEO_UNCOND,
                                                      StepNoise, Text,
                                                      coupling_gradients, leading_timesteps,
                                                      step_generator)
from comfyui_avits.generators.mmdisco.videocrafter import load_videocrafter2
from comfyui_avits.search.aggregation import WeightedSum
from comfyui_avits.search.engine import SearchLimits
from comfyui_avits.search.strategies import BestOfNConfig, EvoSearchConfig, best_of_n, evosearch, naive

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_auffusion  # noqa: E402
import tiny_mmdisco_coupling  # noqa: E402
import tiny_videocrafter  # noqa: E402

from fakes import Mean  # noqa: E402

SECONDS = 0.25  # 2 frames at 8 fps: the tiny twins at their cheapest
PROMPT = "a dog barking"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float32 rounding, relative to the size of the values: a batch of 1 and of 4
    take different conv / matmul blockings, and the random twins amplify the ~1e-7 differences
    over the steps (CFG 8, joint scale 8; the latents grow to tens). Another seed differs by O(1)."""
    return bool((a - b).abs().max() <= 1e-4 * max(1.0, a.abs().max().item()))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    tiny_videocrafter.write(d)
    tiny_mmdisco_coupling.write(d)
    return d


@pytest.fixture(scope="module")
def coupling_path(models_dir) -> Path:
    return models_dir / "mmdisco" / "auffusion_videocrafter2_vggsound.pt"


@pytest.fixture(scope="module")
def disc(coupling_path):
    return load_discriminator(coupling_path)


@pytest.fixture(scope="module")
def video(models_dir):
    return load_videocrafter2(models_dir / "mmdisco" / "videocrafter2" / "model.ckpt", frames=2, size=32)


@pytest.fixture(scope="module")
def auffusion(tmp_path_factory):
    d = tmp_path_factory.mktemp("auffusion")
    return load_auffusion(tiny_auffusion.write(d)["auffusion"], seconds=SECONDS)


class FakeAudio:
    """A cheap audio EpsModel: a random conv of the latent, the text's mean projected in, and a
    small draw from each row's generator (as Auffusion's silence padding draws)."""

    sample_rate = 16000

    def __init__(self, width: int = 32) -> None:
        g = torch.Generator().manual_seed(1)
        self.alphas_cumprod = torch.cumprod(
            1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2, 0)
        self.latent_shape = (4, 8, math.ceil(math.ceil(SECONDS * 16000 / 160) / 8))
        self.weight = torch.randn(4, 4, 3, 3, generator=g) / 6
        self.text = torch.randn(width, 4, generator=g) / width ** 0.5
        self.width = width

    def encode_text(self, prompts):
        return torch.stack([torch.randn(77, self.width, generator=torch.Generator().manual_seed(
            sum(p.encode()))) for p in prompts])

    def null_text(self, batch):
        return torch.zeros(batch, 77, self.width)

    def pooled_text(self, context):
        return context.float().mean(1)

    def predict_noise(self, x, t, context, generators=None):
        draws = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators])
        h = torch.tanh(F.conv2d(x, self.weight, padding=1)) * (t.float() / 1000)[:, None, None, None]
        return h + (context.mean(1) @ self.text)[:, :, None, None] + 0.05 * draws

    def decode(self, z):
        wave = F.interpolate(z.mean(1).flatten(1)[:, None], size=round(SECONDS * 16000), mode="linear")
        return torch.tanh(wave)


def generator(video, audio, disc, steps=4, **kw) -> MMDisCoGenerator:
    return MMDisCoGenerator(video, audio, disc, PROMPT, steps=steps, seconds=SECONDS, **kw)


# ---- the coupling checkpoint ------------------------------------------------------------------

def official_keys(mults: tuple[int, ...], blocks: int, layers: int) -> set[str]:
    """Every key of the published MultimodalDiscriminator for this pair, written out from the
    public module tree (mm_block.py, timestep.py, x_formers.py), independently of our module."""
    keys = {f"time_embed.projection.linear_{i}.{p}" for i in (1, 2) for p in ("weight", "bias")}
    keys |= {f"{m}_text_embed.{p}" for m in ("video", "audio") for p in ("weight", "bias")}
    fe = "feature_extractor.input_blocks."
    keys |= {f"{fe}0.0.{k}.{p}" for k in ("video_conv.video_conv_spatial", "video_conv.video_conv_temporal",
                                          "audio_conv.audio_conv") for p in ("weight", "bias")}
    n, width_changes = 1, []
    for level, mult in enumerate(mults):
        for b in range(blocks):  # a skip conv where the block changes the width
            width_changes.append((n, level > 0 and b == 0 and mult != mults[level - 1]))
            n += 1
        if level < len(mults) - 1:
            width_changes.append((n, False))
            n += 1
    for i, changes in width_changes:
        r = f"{fe}{i}.0."
        for m, conv in (("video", "video_conv_spatial"), ("video", "video_conv_temporal"),
                        ("audio", "audio_conv")):
            keys |= {f"{r}{m}_in_layers.0.GroupNorm.{p}" for p in ("weight", "bias")}
            keys |= {f"{r}{m}_in_layers.2.{conv}.{p}" for p in ("weight", "bias")}
        for m, conv in (("video", "video_conv"), ("audio", "audio_conv")):
            keys |= {f"{r}{m}_out_layers.0.projection.1.{p}" for p in ("weight", "bias")}
            keys |= {f"{r}{m}_out_layers.3.{conv}.{p}" for p in ("weight", "bias")}
            if changes:
                keys |= {f"{r}{m}_skip_connection.{conv}.{p}" for p in ("weight", "bias")}
    fm = "fusion_model."
    keys |= {f"{fm}fm_{m}_in.{p}" for m in ("video", "audio", "time") for p in ("weight", "bias")}
    keys |= {f"{fm}fm.cls_emb", f"{fm}fm.pos_emb.emb.weight"}
    keys |= {f"{fm}fm.{m}.{p}" for m in ("norm", "out_layer") for p in ("weight", "bias")}
    for i in range(2 * layers):
        r = f"{fm}fm.attn_layers.layers.{i}."
        keys |= {r + "0.weight", r + "0.bias"}
        keys |= ({r + f"1.to_{x}.weight" for x in "qkv"} | {r + "1.to_out.weight", r + "1.to_out.bias"}
                 if i % 2 == 0 else {r + f"1.net.{j}.{p}" for j in ("0.0", "2") for p in ("weight", "bias")})
    return keys | {"last_linear.weight", "last_linear.bias"}


def test_the_released_architecture_has_the_official_keys_and_size():
    with torch.device("meta"):
        sd = MultimodalDiscriminator().state_dict()
    assert set(sd) == official_keys((1, 2, 4), 4, 5) and len(sd) == 353
    # 38,972,161: the count of the public module built from the yaml (checked offline)
    assert sum(v.numel() for v in sd.values()) == 38_972_161
    assert sd["fusion_model.fm.attn_layers.layers.0.1.to_q.weight"].shape == (512, 256)
    last = "feature_extractor.input_blocks.14.0.video_out_layers.0.projection.1.weight"
    assert sd[last].shape == (1024, 128)
    assert sizes_of(sd) == DiscriminatorSizes()


def test_the_tiny_twin_loads_strictly_with_its_sizes_read_off(coupling_path, disc):
    sd = torch.load(coupling_path, weights_only=True)
    assert set(sd) == official_keys((1, 2, 2), 2, 2)
    assert disc.sizes == DiscriminatorSizes(**tiny_mmdisco_coupling.TINY)
    assert not disc.training and all(p.dtype == torch.float32 for p in disc.parameters())
    got = disc.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_bad_coupling_files_name_the_file_and_key(tmp_path, coupling_path):
    with pytest.raises(FileNotFoundError, match=PUBLISHED):
        load_discriminator(tmp_path / "auffusion_videocrafter2_vggsound.pt")
    sd = torch.load(coupling_path, weights_only=True)
    bad = tmp_path / "bad.pt"
    key = "feature_extractor.input_blocks.3.0.audio_out_layers.0.projection.1.weight"
    torch.save({**sd, key: torch.zeros(5, 32)}, bad)
    with pytest.raises(CheckpointError, match=f"bad.pt.*{key}"):
        load_discriminator(bad)
    torch.save({k: v for k, v in sd.items() if not k.startswith("video_text_embed")}, bad)
    with pytest.raises(CheckpointError, match="bad.pt.*video_text_embed.weight"):
        load_discriminator(bad)
    torch.save({"residual_predictor." + k: v for k, v in sd.items()}, bad)  # the joint model's prefix
    assert load_discriminator(bad).sizes == DiscriminatorSizes(**tiny_mmdisco_coupling.TINY)


def test_time_embedding_and_logit_follow_the_public_definitions(disc):
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([981, 500, 1])
    proj = disc.time_embed.projection
    want = proj.linear_2(F.silu(proj.linear_1(get_timestep_embedding(t, 32))))
    assert torch.allclose(disc.time_embed(t), want, atol=1e-6)
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 4, 2, 4, 4, generator=g), torch.randn(2, 4, 8, 3, generator=g), t[:2],
            torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g))
    p = torch.sigmoid(disc(*args))
    assert torch.allclose(disc.logit(*args), torch.log(p + 1e-5) - torch.log(1 - p + 1e-5), atol=1e-6)


# ---- the joint step ---------------------------------------------------------------------------

def test_one_joint_step_equals_a_term_by_term_recomputation(video, auffusion, disc):
    """Sampler step k = 3 of 50 on two candidates, under inference mode, against the public
    algorithm written out with separate cond / uncond calls."""
    gen = generator(video, auffusion, disc, steps=50)
    seeds, k = [3, 11], 3
    xv0, xa0 = (torch.stack(x) for x in zip(*gen.initial_noise(seeds)))
    tv, ta = Text.encode(video, PROMPT), Text.encode(auffusion, PROMPT)
    with torch.inference_mode():
        noise = StepNoise.draw(seeds, k, gen.video_shape, gen.audio_shape)
        got_v, got_a = gen.sampler.step(xv0, xa0, k, tv, ta, noise)

    t = 1000 // 50 * (49 - k) + 1
    assert gen.sampler.timesteps_video[k] == gen.sampler.timesteps_audio[k] == t == 921
    tt = torch.full((2,), t)
    w, joint_v, joint_a = 8.0, 8.0, 1.0

    def eps(model, x, text, cond_stream, uncond_stream):
        c = model.predict_noise(x, tt, text.cond.expand(2, -1, -1),
                                [step_generator(s, k, cond_stream) for s in seeds])
        u = model.predict_noise(x, tt, text.uncond.expand(2, -1, -1),
                                [step_generator(s, k, uncond_stream) for s in seeds])
        return u + w * (c - u)

    def grads(pooled_v, pooled_a):
        v, a = xv0.clone().requires_grad_(), xa0.clone().requires_grad_()
        p = torch.sigmoid(disc(v, a, tt, pooled_v.expand(2, -1), pooled_a.expand(2, -1)))
        logit = torch.log(p + 1e-5) - torch.log(1 - p + 1e-5)
        return torch.autograd.grad(logit.sum(), (v, a))

    with torch.no_grad():
        eps_v = eps(video, xv0, tv, VIDEO_COND, VIDEO_UNCOND)
        eps_a = eps(auffusion, xa0, ta, AUDIO_COND, AUDIO_UNCOND)
    gv_c, ga_c = grads(tv.pooled_cond, ta.pooled_cond)
    gv_u, ga_u = grads(tv.pooled_uncond, ta.pooled_uncond)
    sf_v = -math.sqrt(1 - video.alphas_cumprod[t].item())
    sf_a = -math.sqrt(1 - auffusion.alphas_cumprod[t].item())
    res_v = sf_v * gv_u + w * (sf_v * gv_c - sf_v * gv_u)
    res_a = sf_a * ga_u + w * (sf_a * ga_c - sf_a * ga_u)
    final_v, final_a = eps_v + joint_v * res_v, eps_a + joint_a * res_a

    def ddpm(x, e, ab, stream):
        a_t, a_prev = ab[t].item(), ab[t - 20].item()
        x0 = (x - math.sqrt(1 - a_t) * e) / math.sqrt(a_t)
        beta = 1 - a_t / a_prev
        mean = (math.sqrt(a_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a_t)
        z = torch.stack([torch.randn(x.shape[1:], generator=step_generator(s, k, stream)) for s in seeds])
        return mean + math.sqrt((1 - a_prev) / (1 - a_t) * beta) * z

    want_v = ddpm(xv0, final_v, video.alphas_cumprod, VIDEO_NOISE)
    want_a = ddpm(xa0, final_a, auffusion.alphas_cumprod, AUDIO_NOISE)
    assert torch.allclose(got_v, want_v, atol=1e-5) and torch.allclose(got_a, want_a, atol=1e-5)
    # the coupling is really in there: without it the step lands elsewhere
    for res, joint, x, e, ab, s in ((res_v, joint_v, xv0, eps_v, video.alphas_cumprod, VIDEO_NOISE),
                                    (res_a, joint_a, xa0, eps_a, auffusion.alphas_cumprod, AUDIO_NOISE)):
        assert (joint * res).abs().max() > 1e-3
        assert not torch.allclose(ddpm(x, e, ab, s), ddpm(x, e + joint * res, ab, s), atol=1e-4)


def test_the_gradient_works_under_inference_mode_with_a_model_loaded_there(coupling_path, disc):
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(3, 4, 2, 4, 4, generator=g), torch.randn(3, 4, 8, 3, generator=g),
            torch.tensor([901, 501, 21]), torch.randn(3, 32, generator=g), torch.randn(3, 32, generator=g))
    want = coupling_gradients(disc, *args)
    with torch.inference_mode():  # as ComfyUI runs a prompt: load, move and call in there
        inside = load_discriminator(coupling_path).to(torch.float64).to(torch.float32)
        got = coupling_gradients(inside, *(a.clone() for a in args))
    for w, x in zip(want, got):
        assert w.abs().max() > 0 and not x.is_inference() and torch.allclose(w, x, atol=1e-6)
    # each row's gradient is its own: row 1 alone gives row 1's
    alone = coupling_gradients(disc, *(a[1:2] for a in args))
    assert all(torch.allclose(w[1:2], a, atol=1e-6) for w, a in zip(want, alone))


def test_schedule_and_last_step():
    assert leading_timesteps(50) == list(range(981, 0, -20))
    assert leading_timesteps(4) == [751, 501, 251, 1]


# ---- the generator ----------------------------------------------------------------------------

def test_a_candidate_is_the_same_alone_in_a_batch_and_over_a_split_run(video, disc):
    gen = generator(video, FakeAudio(), disc)
    seeds = [5, 6, 7, 8]
    batch, _ = gen.denoise(gen.initial_noise(seeds), 0, 4, seeds)
    alone, _ = gen.denoise(gen.initial_noise([7]), 0, 4, [7])
    half, rec = gen.denoise(gen.initial_noise([7]), 0, 2, [7], record=[0, 2])
    split, _ = gen.denoise(half, 2, 4, [7])
    for got in (alone[0], split[0]):
        assert all(close(a, b) for a, b in zip(batch[2], got))
    assert all(torch.equal(a, b) for a, b in zip(rec[2][0], half[0]))
    other, _ = gen.denoise(gen.initial_noise([7]), 0, 4, [9])  # same start, other stream
    assert not close(other[0][0], alone[0][0]) and not close(other[0][1], alone[0][1])
    assert gen.nfe == 4 * 4 + 4 + 2 + 2 + 4


def test_best_of_n_candidate_k_equals_a_naive_run_with_seed_plus_k(video, disc):
    verifiers = [Mean("video", "video"), Mean("audio", "audio")]
    res = best_of_n(generator(video, FakeAudio(), disc), verifiers, WeightedSum(), BestOfNConfig(3, seed=10),
                    limits=SearchLimits(chunk_size=1))
    for k, cand in enumerate(res.candidates):  # one candidate per call: the same ops, bit for bit
        one = naive(generator(video, FakeAudio(), disc), verifiers, WeightedSum(), seed=10 + k).candidates[0]
        assert cand.seed == 10 + k
        assert all(torch.equal(a, b) for a, b in zip(cand.state, one.state))
    assert res.nfe == 3 * 4 and len(res.config["sigmas"]) == 5
    assert isinstance(res.best_av, AVBatch) and res.best_av.video.shape == (1, 2, 32, 32, 3)
    assert res.best_latent["samples"].shape == (1, 4, 2, 4, 4)
    assert res.best_latent["audio"].shape == (1, *FakeAudio().latent_shape)


def test_decode_gives_the_clip_at_8_fps_and_16_khz(video, disc):
    gen = generator(video, FakeAudio(), disc)
    av = gen.decode(gen.initial_noise([0, 1]))
    assert av.video.shape == (2, 2, 32, 32, 3) and av.fps == 8.0
    assert av.audio.shape == (2, 1, 4000) and av.sample_rate == 16000
    assert 0 <= av.video.min() and av.video.max() <= 1
    sig = gen.sigmas()
    ab = video.alphas_cumprod
    assert len(sig) == 5 and sig[-1] == 0 and sig == sorted(sig, reverse=True)
    assert sig[0] == pytest.approx(math.sqrt((1 - ab[751].item()) / ab[751].item()))
    with pytest.raises(ValueError, match="2 frames at 8 fps"):
        MMDisCoGenerator(video, FakeAudio(), disc, PROMPT, seconds=2.0)


@pytest.mark.parametrize("mode", ["reference", "variance_preserving"])
def test_mutation_in_the_ddpm_convention(video, disc, mode):
    audio = FakeAudio()
    gen = generator(video, audio, disc)
    state = gen.initial_noise([1])[0]
    g = torch.Generator().manual_seed(42)
    ea, ev = torch.randn(state[1].shape, generator=g), torch.randn(state[0].shape, generator=g)
    beta, keep = 0.2, math.sqrt(1 - 0.04)
    v0, a0 = gen.mutate(state, 0, beta, 42, mode)
    assert torch.allclose(v0, keep * state[0] + beta * ev) and torch.allclose(a0, keep * state[1] + beta * ea)
    sv = math.sqrt(1 - video.alphas_cumprod[501].item())  # step 1 of 4 is timestep 501
    sa = math.sqrt(1 - audio.alphas_cumprod[501].item())
    v1, a1 = gen.mutate(state, 1, beta, 42, mode)
    if mode == "variance_preserving":  # noise variance of the step kept: (1 - b^2) s^2 + b^2 s^2
        assert torch.allclose(v1, keep * state[0] + beta * sv * ev)
        assert torch.allclose(a1, keep * state[1] + beta * sa * ea)
    else:
        assert torch.allclose(v1, state[0] + sv * ev) and torch.allclose(a1, state[1] + sa * ea)
    with pytest.raises(ValueError, match="mutation"):
        gen.mutate(state, 1, beta, 42, "other")


def test_evosearch_runs_and_gives_elites_new_rollouts(video, disc):
    gen = generator(video, FakeAudio(), disc)
    cfg = EvoSearchConfig(evolution_steps=(0, 2), population_sizes=(3, 3, 3), elites=1, seed=4,
                          mutation="variance_preserving")
    res = evosearch(gen, [Mean("video", "video"), Mean("audio", "audio")], WeightedSum(), cfg)
    assert len(res.candidates) == cfg.planned_candidates(False) == 9
    assert res.nfe == gen.nfe == cfg.planned_nfe(4, False) == 3 * 4 + 3 * 4 + 3 * 2
    assert len({c.seed for c in res.candidates}) == 9  # elites were rolled out again, with new noise
    assert {c.generation for c in res.candidates} == {0, 1, 2}
    assert res.best.score == max(c.score for c in res.candidates)


def test_x0_predictions_follow_the_ddpm_rule_and_pruning_runs(video, disc):
    from comfyui_avits.generators.mmdisco.sampler import predict_x0
    from comfyui_avits.search.pruning import PrunedBestOfNConfig, pruned_best_of_n

    gen = generator(video, FakeAudio(), disc)
    seeds = [3, 4]
    states = gen.initial_noise(seeds)
    finals, x0 = gen.denoise_predicting(states, 0, 2, seeds)
    plain, _ = generator(video, FakeAudio(), disc).denoise(gen.initial_noise(seeds), 0, 2, seeds)
    assert all(close(a, b) for f, p in zip(finals, plain) for a, b in zip(f, p))  # reading changes nothing
    # the last step's x0: recomputed from its own state and a recorded step with the rule
    before, _ = generator(video, FakeAudio(), disc).denoise(gen.initial_noise(seeds), 0, 1, seeds)
    caught: list = []
    again = generator(video, FakeAudio(), disc)
    again.denoise(before, 1, 2, seeds, _x0=caught)
    assert all(close(a, b) for a, b in zip(caught[-1][0], torch.stack([p[0] for p in x0])))
    t = again.sampler.timesteps_video[1]
    assert predict_x0(torch.ones(1), torch.zeros(1), t, video.alphas_cumprod).item() == \
        pytest.approx(1 / float(video.alphas_cumprod[t]) ** 0.5)
    res = pruned_best_of_n(generator(video, FakeAudio(), disc), [Mean("video", "video")], WeightedSum(),
                           PrunedBestOfNConfig(4, ((2, 0.5),), seed=0))
    assert res.nfe == 4 * 2 + 2 * 2 and sum(c.pruned_at == 2 for c in res.candidates) == 2


def test_the_clip_size_the_memory_limit_reads_is_the_decoded_clips(video, disc):
    gen = generator(video, FakeAudio(), disc)
    av = gen.decode(gen.initial_noise([0]))
    assert gen.clip_bytes() == 4 * (av.video.numel() + av.audio.numel())
