"""JavisDiT as a ComfyUI model, in this process: tiny random twins of every JavisDiT file
(scripts/tiny_javisdit.py) loaded through the pack's loaders, sampled by the real comfy.samplers
(SamplerCustomAdvanced, CFGGuider cfg 7, euler, our sigmas). Naive sampling equals the
reference's procedure written out here; the search bridge runs on it unchanged."""

from __future__ import annotations

import pytest
import torch

import tiny_javisdit
from graphs import spy_on_states

pytestmark = pytest.mark.integration

STEPS = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tiny_javisdit.in_process(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def graph(files):
    return tiny_javisdit.StandardGraph(steps=STEPS)


def parts(x):
    return list(x.unbind()) if getattr(x, "is_nested", False) else [x]


def shapes(x):
    return [tuple(p.shape) for p in parts(x)]


def close(a, b, atol=1e-5) -> bool:
    return all(torch.allclose(p, q, atol=atol, rtol=0) for p, q in zip(parts(a), parts(b)))


class Mean:
    name = "mean"

    def __call__(self, batch, prompts):
        return batch.video.flatten(1).mean(1) + batch.audio.flatten(1).mean(1)


def reference_sample(files, graph, seed: int):
    """The reference's multimodal_sample written out: timesteps 1000 (1 - i/30), the timestep
    transform, one forward on [cond; null] per step, CFG 7 per modality, z += v dt / 1000; the
    T5 states, the prior's draw and the DiT from the plain-torch modules."""
    import comfy.sample
    import comfy.text_encoders.t5
    from pathlib import Path

    from comfyui_avits.generators.javisdit import prior, text
    from comfyui_avits.generators.javisdit.dit import load_dit
    from comfyui_avits.verifiers.imagebind import load_imagebind
    from comfyui_avits.verifiers.imagebind.package import tokenizer

    info = graph.latent["javisdit"]
    t5 = text.load_t5(files["t5"], Path(comfy.text_encoders.t5.__file__).parent / "t5_tokenizer")
    prompt = text.preprocess_prompt(graph.prompt)
    y, mask = t5.encode([prompt])
    dist = prior.load_prior(files["prior"]).distribution(
        prior.text_hidden(load_imagebind(files["imagebind"], "cpu", torch.float32),
                          prior.text_tokens([prompt], tokenizer())))
    eps = torch.randn(dist.mean.shape[1:], generator=torch.Generator().manual_seed(seed))
    spatial, temporal = dist.sample(eps[None])
    model = load_dit(files["dit"])
    null_y, null_s, null_t = model.null_condition(1)
    Y, M = torch.cat([y[:, 0], null_y[:, 0]]), mask.repeat(2, 1)
    S, T = torch.cat([spatial, null_s]), torch.cat([temporal, null_t])
    zv, za = (p.clone() for p in comfy.sample.prepare_noise(graph.latent["samples"], seed).unbind())
    frames = info["num_frames"] // 17 * 5
    r = (info["height"] * info["width"] / 512 ** 2) ** 0.5 * frames ** 0.5
    ts = [(1 - i / STEPS) * 1000 for i in range(STEPS)]
    ts = [1000 * r * (t / 1000) / (1 + (r - 1) * (t / 1000)) for t in ts] + [0.0]
    fps = torch.full((2,), 24.0)
    with torch.no_grad():
        for i in range(STEPS):
            v, a = model(torch.cat([zv, zv]), torch.cat([za, za]), torch.full((2,), ts[i]), Y, M, S, T,
                         fps, info["height"], info["width"])
            v, a = v[:, :4], a[:, :8]
            dt = (ts[i] - ts[i + 1]) / 1000
            zv = zv + (v[1] + 7 * (v[0] - v[1])) * dt
            za = za + (a[1] + 7 * (a[0] - a[1])) * dt
    return zv, za


def test_naive_sampling_through_comfy_samplers_equals_the_reference_procedure(files, graph):
    out = graph.reference(11)
    video, audio = reference_sample(files, graph, 11)
    assert shapes(out) == [tuple(video.shape), tuple(audio.shape)] == [(1, 4, 5, 8, 12), (1, 8, 24, 16)]
    assert torch.allclose(out.unbind()[0], video, atol=1e-5, rtol=0)
    assert torch.allclose(out.unbind()[1], audio, atol=1e-5, rtol=0)
    # the comparison can fail: the same procedure at cfg 6 is far away
    other = tiny_javisdit.StandardGraph(steps=STEPS, cfg=6.0).reference(11)
    assert not close(other, out, atol=1e-3)


def test_the_scheduler_gives_the_reference_sigmas(files):
    from comfyui_avits.nodes import javisdit

    latent = javisdit.empty_latent([], [], 102, 240, 426, 24.0)[2]
    assert shapes(latent["samples"]) == [(1, 4, 30, 30, 53), (1, 8, 112, 16)]
    sigmas = javisdit.JavisDiTSchedulerNode.execute(30, latent).result[0]
    r = (240 * 426 / 512 ** 2) ** 0.5 * 30 ** 0.5
    assert abs(r - 3.4206) < 1e-4 and len(sigmas) == 31 and sigmas[-1] == 0
    s = 1 - 10 / 30
    assert abs(float(sigmas[10]) - r * s / (1 + (r - 1) * s)) < 1e-6
    assert float(sigmas[1]) not in {round(float(sigmas[1]), 3)}  # not snapped to a 1/1000 grid


def test_best_of_n_candidate_k_is_a_naive_run_with_seed_plus_k(graph):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    result = best_of_n(graph.generator(max_batch=4), [Mean()], WeightedSum(), BestOfNConfig(5, seed=7))
    for k, c in enumerate(result.candidates):
        assert c.seed == 7 + k and close(c.state, graph.reference(7 + k))
    assert result.nfe == 5 * STEPS
    clip = result.best_av
    assert clip.fps == 24 and clip.sample_rate == 16000
    assert clip.video.shape[1:] == (17, 64, 96, 3)
    assert clip.audio.shape[-1] == round(17 / 24 * 16000)  # cut to the picture, as the reference


def test_evosearch_with_the_reference_config_spends_300_calls_and_keeps_the_shapes(graph):
    from comfyui_avits.search.aggregation import ARW
    from comfyui_avits.search.strategies import EvoSearchConfig, evosearch

    gen = graph.generator(max_batch=5)
    want = shapes(graph.latent["samples"])
    seen = spy_on_states(gen, shapes)
    config = EvoSearchConfig(evolution_steps=(0, 10), population_sizes=(5, 5, 5), elites=2,
                             mutation_rate=0.2, tournament_ratio=0.5)
    result = evosearch(gen, [Mean()], ARW(), config)
    # 5 x 30 + 3 x 30 + 3 x 20: elites are never denoised again (the reference: 400)
    assert result.nfe == gen.nfe == 300 == config.planned_nfe(STEPS, True)
    assert len(result.candidates) == 11
    assert seen and all(s == want for s in seen)
    assert shapes(result.best_latent["samples"]) == want
    assert result.config["sigmas"] == pytest.approx(graph.sigmas.tolist())
