"""AVITS_ComfyAVGenerator on ComfyUI's own code, in this process: tiny random LTX-AV and
LTX-Video models and VAEs in ComfyUI's file formats (scripts/tiny_ltx.py), loaded by ComfyUI's
loader nodes, sampled by the real comfy.samplers on the CPU. Naive sampling equals
SamplerCustomAdvanced bit for bit, Best-of-N's candidate k equals it with seed + k, EvoSearch
keeps the nested video + audio latents intact, and an ancestral sampler gives each candidate
the same result whatever batch it ran in."""

from __future__ import annotations

import pytest
import torch

import tiny_ltx
from graphs import equal, parts, shapes, spy_on_states

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def comfy_code(tmp_path_factory):
    return tiny_ltx.in_process(tmp_path_factory.mktemp("models"))


def close(a, b) -> bool:
    return all(torch.allclose(p, q, atol=1e-5) for p, q in zip(parts(a), parts(b)))


class Mean:
    name = "mean"

    def __call__(self, batch, prompts):
        return batch.video.flatten(1).mean(1) + batch.audio.flatten(1).mean(1)


@pytest.fixture(scope="module")
def av(comfy_code):
    return tiny_ltx.StandardGraph(comfy_code)


def test_naive_equals_sampler_custom_advanced_bit_for_bit(av):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import naive

    gen = av.generator()
    result = naive(gen, [Mean()], WeightedSum(), seed=42)
    latent = result.best_latent["samples"]
    reference = av.reference(42)
    assert latent.is_nested and shapes(latent) == shapes(reference)
    assert equal(latent, reference)
    assert result.nfe == gen.nfe == 5  # one guided evaluation per step
    assert result.best_latent.get("type") == av.latent.get("type")
    clip = result.best_av
    assert clip.video.shape[1:] == (9, 64, 64, 3) and clip.audio.shape[0] == 1


def test_batching_candidates_is_an_opt_in_that_costs_float_rounding(av):
    """The default (one candidate per model call) is SamplerCustomAdvanced bit for bit
    (test_streams.py); several per call take other matmul blockings: equal to ~5e-7 here."""
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    alone = best_of_n(av.generator(), [Mean()], WeightedSum(), BestOfNConfig(3, seed=7))
    batched = best_of_n(av.generator(max_batch=3), [Mean()], WeightedSum(), BestOfNConfig(3, seed=7))
    assert all(equal(c.state, av.reference(7 + k)) for k, c in enumerate(alone.candidates))
    assert all(close(a.state, b.state) for a, b in zip(alone.candidates, batched.candidates))


def test_evosearch_keeps_the_nested_latents_intact(av):
    from comfyui_avits.search.aggregation import ARW
    from comfyui_avits.search.strategies import EvoSearchConfig, evosearch

    gen = av.generator()
    want = shapes(av.reference(0))
    seen = spy_on_states(gen, shapes)
    config = EvoSearchConfig(evolution_steps=(0, 2), population_sizes=(3, 3, 3), elites=1)
    result = evosearch(gen, [Mean()], ARW(), config)
    assert len(result.candidates) == 3 + 2 + 2 and result.nfe == gen.nfe == 3 * 5 + 2 * 5 + 2 * 3
    assert seen and all(s == want for s in seen)
    assert shapes(result.best_latent["samples"]) == want


def test_mutation_follows_the_models_noise_scaling(av):
    import comfy.sample

    gen = av.generator()
    noise = gen.initial_noise([3])[0]
    at2, _ = gen.denoise([noise], 0, 2, [3])
    child = gen.mutate(at2[0], 2, 0.2, 11, "reference")
    eps = comfy.sample.prepare_noise(at2[0], 11)
    sigma, raw = float(av.sigmas[2]), 1 - 2 / 5
    for c, s, e in zip(parts(child), parts(at2[0]), parts(eps)):
        # flow models: the sampler's state is x / (1 - sigma); x gains the reference's raw
        # timestep (1 - step / steps, not the shifted sigma) times eps
        assert torch.allclose(c * (1 - sigma), s * (1 - sigma) + raw * e, atol=1e-5)
    vp = gen.mutate(at2[0], 2, 0.2, 11, "variance_preserving")
    for c, s, e in zip(parts(vp), parts(at2[0]), parts(eps)):
        assert torch.allclose(c * (1 - sigma), 0.96 ** 0.5 * s * (1 - sigma) + 0.2 * sigma * e, atol=1e-5)
    first = gen.mutate(noise, 0, 0.2, 11, "reference")
    eps0 = comfy.sample.prepare_noise(noise, 11)
    assert all(torch.allclose(f, 0.96 ** 0.5 * n + 0.2 * e) for f, n, e in
               zip(parts(first), parts(noise), parts(eps0)))


def test_a_stochastic_sampler_gives_each_candidate_the_same_result_in_any_batch(comfy_code):
    graph = tiny_ltx.StandardGraph(comfy_code, sampler="euler_ancestral")
    gen = graph.generator(max_batch=4)
    assert not gen.deterministic
    noise = gen.initial_noise([1, 2, 3])
    together, _ = gen.denoise(noise, 0, 5, [1, 2, 3])
    alone, _ = gen.denoise(noise[1:2], 0, 5, [2])
    assert equal(together[1], alone[0]) and not equal(together[0], together[1])


def test_a_video_only_model_runs_the_same_way(comfy_code):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    graph = tiny_ltx.StandardGraph(comfy_code, audio=False)
    result = best_of_n(graph.generator(max_batch=1), [Mean()], WeightedSum(), BestOfNConfig(2, seed=5))
    assert not getattr(result.best_latent["samples"], "is_nested", False)
    for k, c in enumerate(result.candidates):
        assert torch.equal(c.state, graph.reference(5 + k))
    assert result.best_av.audio.abs().max() == 0  # a silent track for a video-only model


def test_guide_frames_under_a_noise_mask_follow_an_unsplit_run(comfy_code):
    """A latent with a guide in its first frame (noise mask 0 there, as image-to-video sets it):
    stopping at a step and continuing, or mutating there, never noises the guide, and the split
    run equals the unsplit one."""
    from comfy.nested_tensor import NestedTensor

    graph = tiny_ltx.StandardGraph(comfy_code)
    video, audio = graph.latent["samples"].unbind()
    guide = video.clone()
    guide[:, :, :1] = torch.randn(guide[:, :, :1].shape, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, 1, *video.shape[2:])
    mask[:, :, :1] = 0
    graph.latent = {**graph.latent, "samples": NestedTensor([guide, audio]), "noise_mask": mask}
    gen = graph.generator(max_batch=2)
    noise = gen.initial_noise([4, 5])
    whole, _ = gen.denoise(noise, 0, 5, [4, 5])
    split, recorded = gen.denoise(noise, 0, 5, [4, 5], record=[2])
    def latent(state):
        return gen.to_latent([state])["samples"]

    for a, b in zip(whole, split):
        assert close(latent(a), latent(b))
        assert torch.allclose(parts(latent(a))[0][:, :, :1], guide[:, :, :1], atol=1e-5)
    child = gen.mutate(recorded[2][0], 2, 0.2, 9, "reference")
    done, _ = gen.denoise([child], 2, 5, [9])
    assert torch.allclose(parts(latent(done[0]))[0][:, :, :1], guide[:, :, :1], atol=1e-5)
    assert not close(latent(done[0]), latent(split[0]))


def test_the_x0_prediction_is_the_samplers_own_denoised(av):
    gen = av.generator()
    noise = gen.initial_noise([4, 5])
    finals, x0 = gen.denoise_predicting(noise, 0, gen.steps, [4, 5])
    # euler's last step lands on the model's denoised (sigma 0): the prediction is the sample
    assert all(close(f, p) for f, p in zip(finals, x0)) and all(shapes(p) == shapes(f) for f, p in zip(finals, x0))
    mid, early = gen.denoise_predicting(noise, 0, 2, [4, 5])
    plain, _ = gen.denoise(noise, 0, 2, [4, 5])
    assert all(equal(a, b) for a, b in zip(mid, plain))  # reading it changes nothing
    assert not close(early[0], finals[0]) and gen.nfe == 2 * 5 + 2 * 2 + 2 * 2
