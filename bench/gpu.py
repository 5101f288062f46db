"""scripts/bench gpu: the search on ComfyUI's two native audio-video models at their real sizes
(random weights), on a GPU, measured side by side in one run, under 10 minutes:

- LTX-2 (ComfyUI's LTXAVModel at its defaults, the 19B configuration), 8 distilled steps,
  euler_ancestral, 640 x 352 x 121 frames (LTX-2.5's stage 1) + audio;
- MiniMax H3 (MiniMaxH3Model at its defaults), 4 steps (a turbo setting), euler,
  768 x 448 x 124 frames + audio;

for each: seconds per candidate of Best-of-4 through AVITS_ComfyAVGenerator (the node's
defaults: one candidate per call) against four plain SamplerCustomAdvanced runs, the decode time
of one candidate through the full video VAE against the scoring decoder (LTX: core's TAEHV at
128 channels, the taeltx_2 architecture; H3 has no TAE: its full VAEs only), and the peak GPU
memory of each phase. The models go through ComfyUI's own loading path from state dicts of
random bf16 weights (comfy.sd.load_diffusion_model_state_dict, comfy.sd.VAE). Where no GPU is
present it says so and exits 0; ``--dry-run`` runs the same code on the CPU at the tiny twins'
sizes (a check of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

from .common import REPO, comfyui_avits  # noqa: F401

sys.path.insert(0, str(REPO / "scripts"))
import tiny_h3  # noqa: E402
import tiny_ltx  # noqa: E402

N = 4
SETTINGS = {
    "LTX-2 (LTXAV, 19B defaults)": dict(steps=8, sampler="euler_ancestral", size=(640, 352, 121),
                                       text=(128, 3840)),
    "MiniMax H3 (defaults)": dict(steps=4, sampler="euler", size=(768, 448, 124), text=(256, 5120)),
}
TINY = {"LTX-2 (LTXAV, 19B defaults)": dict(size=(64, 64, 9), text=(2, 1024)),
        "MiniMax H3 (defaults)": dict(size=(64, 64, 5), text=(2, 1024))}


def random_state_dict(module_cls, kwargs: dict, dtype, device) -> dict:
    """The module's keys and shapes (built on the meta device) filled with N(0, 0.02), made on
    ``device`` and kept on the CPU, as a loaded file would be."""
    import comfy.ops
    import torch

    with torch.device("meta"):
        module = module_cls(**kwargs, operations=comfy.ops.disable_weight_init)
    sd = {}
    for key, value in module.state_dict().items():
        t = torch.randn(value.shape, device=device, dtype=torch.float32).mul_(0.02)
        sd[key] = t.to(dtype if value.dtype.is_floating_point else value.dtype).cpu()
    return sd


def vae_state_dict(module, dtype, device) -> dict:
    import torch
    out = {}
    for key, value in module.state_dict().items():
        if key.endswith(("latents_std", "std-of-means")):
            out[key] = torch.ones(value.shape)
        elif key.endswith(("latents_mean", "mean-of-means")):
            out[key] = torch.zeros(value.shape)
        else:
            out[key] = torch.randn(value.shape, device=device).mul_(0.02).to(dtype).cpu()
    return out


def build(name: str, tiny: bool, device: str):
    """(model patcher, positive, negative, latent, video VAE, audio VAE, scoring VAE or None)."""
    import comfy.sd
    import torch
    from comfy.nested_tensor import NestedTensor

    dtype = torch.float32 if tiny else torch.bfloat16
    ltx = name.startswith("LTX")
    setting = {**SETTINGS[name], **(TINY[name] if tiny else {})}
    if ltx:
        from comfy.ldm.lightricks.av_model import LTXAVModel
        from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE
        from comfy.taesd.taehv import TAEHV
        kwargs = tiny_ltx.LTXAV if tiny else {}
        sd = random_state_dict(LTXAVModel, kwargs, dtype, device)
        meta = {"config": json.dumps({"transformer": kwargs})} if tiny else None
        vae_config = tiny_ltx.VIDEO_VAE if tiny else None
        full = VideoVAE(config=vae_config) if tiny else VideoVAE()
        vae = comfy.sd.VAE(sd=vae_state_dict(full, dtype, device),
                           metadata={"config": json.dumps({"vae": vae_config})} if tiny else None)
        scoring = comfy.sd.VAE(sd=vae_state_dict(TAEHV(latent_channels=128), dtype, device))
        audio_vae = None
    else:
        import comfy.ldm.minimax.audio_vae as h3_audio
        from comfy.ldm.minimax.model import MiniMaxH3Model
        from comfy.taesd.taehv import TAEHV
        kwargs = tiny_h3.DIT if tiny else {}
        sd = random_state_dict(MiniMaxH3Model, kwargs, dtype, device)
        n = (kwargs or {}).get("rope_inv_freq_len", 16)
        sd["rope.inv_freq"] = 1.0 / 10000 ** (torch.arange(n, dtype=torch.float32) / n)
        meta = None
        if tiny:  # the video VAE at full size is a 2048-wide ViT: the twin's stand-in on the CPU
            tiny_h3.use_twin_sizes()
            vae = comfy.sd.VAE(sd=vae_state_dict(TAEHV(latent_channels=24), dtype, device))
        else:
            from comfy.ldm.minimax.vae import MiniMaxH3VideoVAE
            vae = comfy.sd.VAE(sd=vae_state_dict(MiniMaxH3VideoVAE(), dtype, device))
        audio_vae = comfy.sd.VAE(sd=vae_state_dict(h3_audio.MiniMaxH3AudioVAE(), dtype, device))
        scoring = None
    patcher = comfy.sd.load_diffusion_model_state_dict(sd, metadata=meta)
    del sd
    tokens, width = setting["text"]
    text = torch.randn(1, tokens, width, generator=torch.Generator().manual_seed(0)) * 0.1
    positive, negative = [[text, {"frame_rate": 24.0}]], [[torch.zeros_like(text), {"frame_rate": 24.0}]]
    w, h, frames = setting["size"]
    if ltx:
        import comfy_extras.nodes_lt as lt
        video = tiny_ltx._out(lt.EmptyLTXVLatentVideo.execute(w, h, frames, 1))[0]["samples"]
        latent_frames = round(frames / 24.0 * 25)  # LTX-2's audio latents: 25 per second
        audio = torch.zeros(1, 8, latent_frames, 16)
        latent = {"samples": NestedTensor((video, audio))}
    else:
        import comfy_extras.nodes_minimax_h3 as h3
        latent = tiny_ltx._out(h3.EmptyMiniMaxH3LatentAV.execute(w, h, frames))[0]
    return patcher, positive, negative, latent, vae, audio_vae, scoring, setting


def peak_gb() -> float:
    import torch
    return torch.cuda.max_memory_allocated() / 2 ** 30 if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def sync() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(name: str, tiny: bool, device: str) -> dict[str, float]:
    import comfy.samplers
    import comfy.sample
    import torch
    from comfy_extras import nodes_custom_sampler as cs

    from comfyui_avits.nodes.comfy_bridge import ComfyAVGenerator

    t = time.perf_counter()
    patcher, pos, neg, latent, vae, audio_vae, scoring, setting = build(name, tiny, device)
    out = {"build_s": time.perf_counter() - t}
    guider = comfy.samplers.CFGGuider(patcher)
    guider.set_conds(pos, neg)
    guider.set_cfg(1.0)
    sampler = comfy.samplers.sampler_object(setting["sampler"])
    sigmas = tiny_ltx._out(cs.BasicScheduler.execute(patcher, "simple", setting["steps"], 1.0))[0]
    with torch.inference_mode():
        def plain(seed: int):
            noise = tiny_ltx._out(cs.RandomNoise.execute(seed))[0]
            return cs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent)

        plain(99)  # warm-up
        sync()
        reset_peak()
        t = time.perf_counter()
        for k in range(N):
            plain(k)
        sync()
        out["SamplerCustomAdvanced_s_per_candidate"] = (time.perf_counter() - t) / N
        out["SamplerCustomAdvanced_peak_gb"] = peak_gb()
        for batch in (1, N):  # the default, and the opt-in batching (H3 stays at 1 whatever)
            gen = ComfyAVGenerator(guider, sampler, sigmas, latent, vae, audio_vae, "", 24.0,
                                   max_batch=batch)
            reset_peak()
            t = time.perf_counter()
            finals, _ = gen.denoise(gen.initial_noise(range(N)), 0, gen.steps, list(range(N)))
            sync()
            out[f"bridge_{gen.max_batch}_s_per_candidate"] = (time.perf_counter() - t) / N
            out[f"bridge_{gen.max_batch}_peak_gb"] = peak_gb()
        for label, g in (("full_vae", gen), ("scoring_vae", None if scoring is None else
                                             ComfyAVGenerator(guider, sampler, sigmas, latent, vae,
                                                              audio_vae, "", 24.0, scoring_vae=scoring))):
            if g is None:
                continue
            g.decode(finals[:1])  # warm-up
            sync()
            reset_peak()
            t = time.perf_counter()
            g.decode(finals[:1])
            sync()
            out[f"decode_{label}_s"] = time.perf_counter() - t
            out[f"decode_{label}_peak_gb"] = peak_gb()
    return out


def release() -> None:
    """Free one model's weights before the next is built."""
    import comfy.model_management
    gc.collect()
    comfy.model_management.unload_all_models()
    comfy.model_management.soft_empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench gpu", description=__doc__)
    parser.add_argument("--dry-run", action="store_true",
                        help="the same code on the CPU at the tiny twins' sizes (no figures)")
    args = parser.parse_args(argv)
    tiny_ltx.import_comfy(("--cpu",) if args.dry_run else ())
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print("scripts/bench gpu: no GPU here, nothing measured (run it on a GPU machine; "
              "--dry-run checks the script on the CPU at the tiny twins' sizes)")
        return 0
    device = "cpu" if args.dry_run else "cuda"
    where = "CPU dry run at the tiny twins' sizes: NOT a measurement" if args.dry_run else \
        torch.cuda.get_device_name(0)
    print(f"Best-of-{N} per candidate, {where}")
    for name in SETTINGS:
        got = measure(name, args.dry_run, device)
        release()
        base = got["SamplerCustomAdvanced_s_per_candidate"]
        print(f"{name}: build {got['build_s']:.0f} s")
        print(f"  SamplerCustomAdvanced  {base:8.2f} s/candidate  peak {got['SamplerCustomAdvanced_peak_gb']:.1f} GiB")
        for batch in (1, N):
            if f"bridge_{batch}_s_per_candidate" in got:
                per = got[f"bridge_{batch}_s_per_candidate"]
                print(f"  bridge, max_batch {batch}   {per:8.2f} s/candidate  ratio {per / base:.2f}  "
                      f"peak {got[f'bridge_{batch}_peak_gb']:.1f} GiB")
        for label in ("full_vae", "scoring_vae"):
            if f"decode_{label}_s" in got:
                print(f"  decode, {label:12s} {got[f'decode_{label}_s']:8.2f} s/candidate  "
                      f"peak {got[f'decode_{label}_peak_gb']:.1f} GiB")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
