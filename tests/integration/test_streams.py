"""The bridge on ComfyUI's two native joint audio-video models, tiny twins built from ComfyUI's
own classes (scripts/tiny_ltx.py, scripts/tiny_h3.py), loaded by ComfyUI's loaders and sampled
by its samplers in this process: with the node's defaults candidate k is SamplerCustomAdvanced
with seed + k bit for bit; H3 runs one sample per call whatever max_batch says; a later-step
mutation gives each stream noise of its own sigma; the x0 read for pruning is each stream's own
clean estimate; the searches keep the nested shapes; a model the pack does not know is searched
from step 0 and refused, with the reason, where its stream noise levels would be guessed."""

from __future__ import annotations

import pytest
import torch

import tiny_h3
import tiny_ltx
from graphs import equal, parts, shapes, spy_on_states

pytestmark = pytest.mark.integration

SAMPLERS = ("euler", "euler_ancestral")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"ltx": tiny_ltx.in_process(d), "h3": tiny_h3.in_process(d)}


def graph(files, model: str, sampler: str = "euler", **kw):
    if model == "h3":
        return tiny_h3.H3Graph(files["h3"], sampler=sampler, **kw)
    return tiny_ltx.StandardGraph(files["ltx"], sampler=sampler, **kw)


class Mean:
    name = "mean"

    def __call__(self, batch, prompts):
        return batch.video.flatten(1).mean(1) + batch.audio.flatten(1).mean(1)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("model", ["h3", "ltx"])
def test_with_the_defaults_candidate_k_is_sampler_custom_advanced_with_seed_plus_k(files, model, sampler):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    g = graph(files, model, sampler)
    result = best_of_n(g.generator(), [Mean()], WeightedSum(), BestOfNConfig(3, seed=7))
    for k, c in enumerate(result.candidates):
        want = g.reference(7 + k)
        assert c.seed == 7 + k and len(parts(c.state)) == 2 and equal(c.state, want)
    assert equal(result.best_latent["samples"], g.reference(result.best.seed))


def test_h3_runs_one_sample_per_call_whatever_max_batch_says(files):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    g = graph(files, "h3")
    gen = g.generator(max_batch=4)
    assert gen.streams.max_batch == 1 and gen.max_batch == 1  # read off the model, before any work
    result = best_of_n(gen, [Mean()], WeightedSum(), BestOfNConfig(3, seed=2))
    assert all(equal(c.state, g.reference(2 + k)) for k, c in enumerate(result.candidates))
    assert graph(files, "ltx").generator(max_batch=4).max_batch == 4  # LTX-2 batches on request


def _audio_sigma(g, sigma: float) -> float:
    """H3's audio sigma from ComfyUI's own closed form and the shifts on the model patch."""
    from comfy.ldm.minimax.model import time_shift_sigma

    to = g.guider.model_patcher.model_options["transformer_options"]
    return float(time_shift_sigma(torch.tensor(sigma), to["minimax_h3_sigma_shift_video"],
                                  to["minimax_h3_sigma_shift_audio"]))


@pytest.mark.parametrize("model", ["h3", "ltx"])
def test_a_later_variance_preserving_mutation_gives_each_stream_its_own_sigma(files, model):
    import comfy.sample

    g = graph(files, model)
    gen = g.generator()
    step, beta = 4, 0.2
    state, _ = gen.denoise(gen.initial_noise([3]), 0, step, [3])
    child = gen.mutate(state[0], step, beta, 11, "variance_preserving")
    eps = comfy.sample.prepare_noise(state[0], 11)
    sigma = float(g.sigmas[step])
    own = [sigma, _audio_sigma(g, sigma) if model == "h3" else sigma]
    if model == "h3":  # at step 4 of 6 the audio is far less noisy than the video
        assert own[1] < 0.75 * own[0]
    for c, s, e, sig in zip(parts(child), parts(state[0]), parts(eps), own):
        # the sampler's state is x / (1 - sigma); x is mixed as sqrt(1 - b^2) x + b sigma_s eps
        noise = (c - (1 - beta ** 2) ** 0.5 * s) * (1 - sigma)
        assert torch.allclose(noise, beta * sig * e, atol=1e-5)


@pytest.mark.parametrize("model", ["h3", "ltx"])
def test_the_x0_read_is_each_streams_own_clean_estimate(files, model):
    """With CFG 1 the model runs once per step; a hook on ComfyUI's DiT keeps its input and raw
    output. A stream's own clean estimate is x - sigma_s v_s, where the DiT returns slope * v_s
    for a stream on a shifted schedule (H3's audio: ComfyUI's time_shift_slope)."""
    import comfy.utils
    from comfy.ldm.minimax.model import time_shift_slope

    g = graph(files, model, cfg=1.0)
    gen = g.generator()
    calls = []
    dit = gen.guider.model_patcher.model.diffusion_model
    hook = dit.register_forward_hook(lambda m, args, out: calls.append((args[0], out)))
    try:
        _, x0 = gen.denoise_predicting(gen.initial_noise([5]), 0, 3, [5])
    finally:
        hook.remove()
    assert len(calls) == 3
    (xv, xa), (ov, oa) = calls[-1]  # the model's call on the state at step 2
    sigma = float(g.sigmas[2])
    if model == "h3":
        slope = float(time_shift_slope(torch.tensor(sigma), 12.0, 3.0))
        own = [xv - sigma * ov, xa - _audio_sigma(g, sigma) * oa / slope]
        flat = xa - sigma * oa  # the sampler's denoised for the audio overshoots by far
        assert (flat - xa).abs().mean() > 2 * (own[1] - xa).abs().mean()
    else:
        own = [xv - sigma * ov, xa - sigma * oa]
    packed, latent_shapes = comfy.utils.pack_latents(own)
    want = comfy.utils.unpack_latents(gen.guider.model_patcher.model.process_latent_out(packed),
                                      latent_shapes)
    for got, w in zip(parts(x0[0]), want):
        assert torch.allclose(got, w.to(got), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model", ["h3", "ltx"])
def test_evosearch_pruning_and_particles_keep_the_nested_shapes(files, model):
    from comfyui_avits.search.aggregation import ARW
    from comfyui_avits.search.pruning import (ParticleConfig, PrunedBestOfNConfig,
                                              particle_search, pruned_best_of_n)
    from comfyui_avits.search.strategies import EvoSearchConfig, evosearch

    g = graph(files, model)
    want = shapes(g.reference(0))
    for run in (lambda gen: evosearch(gen, [Mean()], ARW(), EvoSearchConfig(
                    evolution_steps=(0, 3), population_sizes=(3, 3, 3), elites=1,
                    mutation="variance_preserving")),
                lambda gen: pruned_best_of_n(gen, [Mean()], ARW(), PrunedBestOfNConfig(
                    n=4, schedule=((2, 0.5), (4, 0.5)))),
                lambda gen: particle_search(gen, [Mean()], ARW(), ParticleConfig(
                    n=3, resample_steps=(2, 4)))):
        gen = g.generator()
        seen = spy_on_states(gen, shapes)
        result = run(gen)
        assert seen and all(s == want for s in seen)
        assert shapes(result.best_latent["samples"]) == want
        assert result.best_av.audio.shape[1] == 2  # H3 and LTX-2 sound is stereo


def test_a_model_the_pack_does_not_know_is_searched_from_step_0_and_refused_later(files):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.engine import SearchError
    from comfyui_avits.search.pruning import PrunedBestOfNConfig, pruned_best_of_n
    from comfyui_avits.search.strategies import (BestOfNConfig, EvoSearchConfig, best_of_n,
                                                 evosearch)

    g = graph(files, "ltx")
    model = g.guider.model_patcher.model
    model.__class__ = type("SomeOtherAV", (type(model),), {})  # a fresh load: only this graph's
    gen = g.generator()
    assert gen.streams.unknown
    best_of_n(gen, [Mean()], WeightedSum(), BestOfNConfig(2, seed=1))
    evosearch(gen, [Mean()], WeightedSum(), EvoSearchConfig((0,), (2, 2), elites=1))
    nfe = gen.nfe
    with pytest.raises(SearchError, match="after step 0: .*noise level SomeOtherAV"):
        evosearch(gen, [Mean()], WeightedSum(), EvoSearchConfig((0, 2), (2, 2, 2), elites=1))
    with pytest.raises(SearchError, match="needs a clean-sample prediction.*SomeOtherAV"):
        pruned_best_of_n(gen, [Mean()], WeightedSum(), PrunedBestOfNConfig(2, ((2, 0.5),)))
    assert gen.nfe == nfe  # refused before any work
    state = gen.initial_noise([0])[0]
    gen.mutate(state, 0, 0.2, 1, "reference")
    with pytest.raises(ValueError, match="SomeOtherAV"):
        gen.mutate(state, 2, 0.2, 1, "reference")


@pytest.fixture
def no_grad():
    with torch.no_grad():
        yield


def test_a_scoring_decoder_scores_the_candidates_and_the_winner_is_decoded_once_in_full(files, no_grad):
    import nodes as comfy_nodes
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    g = graph(files, "ltx")
    tae = comfy_nodes.VAELoader().load_vae(files["ltx"]["tae"].name)[0]  # core's TAEHV
    gen = g.generator(scoring_vae=tae)
    result = best_of_n(gen, [Mean()], WeightedSum(), BestOfNConfig(3, seed=4))
    assert result.config["decoders"] == {"score": "scoring_vae (TAEHV)", "winner": "vae (VideoVAE)"}
    audio = g.audio_vae.decode(parts(result.candidates[0].state)[1]).movedim(-1, 1)
    for k, c in enumerate(result.candidates):
        assert equal(c.state, g.reference(4 + k))  # the latents do not depend on the decoder
        video = parts(c.state)[0]
        cheap, full = tae.decode(video).clamp(0, 1).mean(), g.vae.decode(video).clamp(0, 1).mean()
        sound = g.audio_vae.decode(parts(c.state)[1]).movedim(-1, 1)[..., :audio.shape[-1]].mean()
        assert c.rewards["mean"] == pytest.approx(float(cheap + sound), abs=1e-4)
        assert abs(c.rewards["mean"] - float(full + sound)) > 1e-3
    assert equal(result.best_latent["samples"], g.reference(result.best.seed))
    video = parts(result.best.state)[0]
    assert torch.equal(result.best_av.video[0], g.vae.decode(video).float().clamp(0, 1)[0])
    shown = g.generator(scoring_vae=tae, winner_decoder="scoring_vae")
    again = best_of_n(shown, [Mean()], WeightedSum(), BestOfNConfig(3, seed=4))
    assert again.config["decoders"]["winner"] == "scoring_vae (TAEHV)"
    assert again.best_av.video.shape == tae.decode(video).shape


def test_the_default_pruning_schedule_runs_on_the_8_step_distilled_ltx_schedule(files):
    from comfyui_avits.search.aggregation import ARW
    from comfyui_avits.search.pruning import PrunedBestOfNConfig, pruned_best_of_n

    g = graph(files, "ltx")
    g.sigmas = torch.tensor([1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0])
    result = pruned_best_of_n(g.generator(), [Mean()], ARW(), PrunedBestOfNConfig(n=4))
    assert result.config["schedule"] == [[2, 0.5], [3, 0.4]] and result.config["survivors"] == [2, 1]
    assert result.nfe == 4 * 2 + 2 * 1 + 1 * 5


@pytest.mark.parametrize("model", ["h3", "ltx"])
def test_the_memory_limit_guards_the_bridge_from_the_decoded_clip_size(files, model):
    from comfyui_avits.search.aggregation import WeightedSum
    from comfyui_avits.search.engine import SearchError, SearchLimits
    from comfyui_avits.search.strategies import BestOfNConfig, best_of_n

    g = graph(files, model)
    gen = g.generator()
    state, _ = gen.denoise(gen.initial_noise([0]), 0, gen.steps, [0])
    av = gen.decode(state)
    actual = 4 * (av.video.numel() + av.audio.numel())
    assert actual <= gen.clip_bytes() <= 2.5 * actual  # an upper bound read off the latent
    nfe = gen.nfe
    with pytest.raises(SearchError, match="max_chunk_gb"):
        best_of_n(gen, [Mean()], WeightedSum(), BestOfNConfig(4),
                  limits=SearchLimits(chunk_size=4, max_chunk_gb=3.5 * gen.clip_bytes() / 1e9))
    assert gen.nfe == nfe  # refused before any work
