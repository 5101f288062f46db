"""A tiny random MiniMax H3 in ComfyUI 0.30.0's own formats, built from ComfyUI's own classes, so
tests load it through ComfyUI's loaders and sample it with ComfyUI's samplers on the CPU.

``write`` lays out, in ComfyUI's models folder:

- ``diffusion_models/minimax_h3_tiny.safetensors``: the H3 DiT (comfy.ldm.minimax.model, one
  block, width 64), which UNETLoader detects as MiniMaxH3 from its keys and shapes;
- ``vae/minimax_h3_audio_vae_tiny.safetensors``: the H3 audio VAE (DAC encoder + BigVGAN,
  comfy.ldm.minimax.audio_vae) at small widths, for VAELoader;
- ``vae/minimax_h3_video_standin_tiny.safetensors``: a stand-in for H3's video VAE: core's TAEHV
  at H3's 24 latent channels, for VAELoader.

Two things cannot be had in ComfyUI's format at a tiny size. ComfyUI builds both H3 VAEs with
their published sizes whatever the file holds: the video VAE's decoder is a 36-block,
2048-wide ViT whose widths are not constructor arguments, so it stands in as TAEHV (the class
core loads for taehv / lighttae files; it decodes an H3 latent at 8x, not 16x, and 4T - 3
frames). The audio VAE takes its widths as arguments, so ``use_twin_sizes()`` makes the
process that loads the twin build it at the twin's widths (the test process and the test
server's pack call it; a user's ComfyUI is untouched). There is no tiny Qwen3-VL text encoder:
the DiT takes ``text_dim=1024`` so LotusConditioning's constant [1, 2, 1024] stands in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tiny_ltx import SamplerGraph, _out, _random, import_comfy

SEED = 10
DIT = dict(hidden_size=64, num_layers=1, token_refiner_num_layers=1, num_attention_heads=2,
           attention_head_dim=32, ffn_hidden_size=128, text_dim=1024, timestep_input_dim=32,
           time_embed_hidden_size=64, time_embed_dim=32, rope_inv_freq_len=4)
AUDIO_VAE = dict(encoder_dim=4, latent_dim=32, decoder_dim=128)
FILES = {"h3": "diffusion_models/minimax_h3_tiny.safetensors",
         "audio_vae": "vae/minimax_h3_audio_vae_tiny.safetensors",
         "video_vae": "vae/minimax_h3_video_standin_tiny.safetensors"}


def use_twin_sizes() -> None:
    """From now on this process builds H3's audio VAE at the twin's widths (see the module)."""
    import_comfy()
    import comfy.ldm.minimax.audio_vae as audio_vae

    full = audio_vae.MiniMaxH3AudioVAE
    if getattr(full, "twin_sized", False):
        return

    class TwinSized(full):
        twin_sized = True

        def __init__(self, **kwargs):
            super().__init__(**{**AUDIO_VAE, **kwargs})

    TwinSized.__name__ = full.__name__
    audio_vae.MiniMaxH3AudioVAE = TwinSized


def state_dicts(seed: int = SEED) -> dict[str, dict[str, torch.Tensor]]:
    import_comfy()
    import comfy.ops
    from comfy.ldm.minimax.audio_vae import MiniMaxH3AudioVAE
    from comfy.ldm.minimax.model import MiniMaxH3Model
    from comfy.taesd.taehv import TAEHV

    dit = _random(MiniMaxH3Model(**DIT, operations=comfy.ops.disable_weight_init), seed)
    n = DIT["rope_inv_freq_len"]  # the usual rotary frequencies, not noise
    dit["rope.inv_freq"] = 1.0 / 10000 ** (torch.arange(n, dtype=torch.float32) / n)
    audio = _random(MiniMaxH3AudioVAE(**AUDIO_VAE), seed + 1)
    audio["latents_mean"], audio["latents_std"] = torch.zeros(32), torch.ones(32)
    video = _random(TAEHV(latent_channels=24), seed + 2)
    return {"h3": dit, "audio_vae": audio, "video_vae": video}


def write(models_dir: Path) -> dict[str, Path]:
    """Writes the three files under ``models_dir``; returns their paths by name."""
    from safetensors.torch import save_file

    paths = {}
    for name, sd in state_dicts().items():
        path = Path(models_dir) / FILES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(path), metadata={"config": json.dumps({"avits_twin": "minimax_h3"})})
        paths[name] = path
    return paths


def in_process(models_dir: Path) -> dict[str, Path]:
    """Write the twin, build H3's audio VAE at its sizes in this process, and point this
    process's ComfyUI model folders at them."""
    files = write(models_dir)
    use_twin_sizes()
    import folder_paths
    for kind in ("diffusion_models", "vae"):
        folder_paths.add_model_folder_path(kind, str(Path(models_dir) / kind), is_default=True)
    return files


class H3Graph(SamplerGraph):
    """ComfyUI's H3 text-to-audio-video graph on the twin, node by node with ComfyUI's own node
    classes (UNETLoader, MiniMaxH3SigmaShift, EmptyMiniMaxH3LatentAV, CFGGuider, BasicScheduler;
    LotusConditioning for the text), up to what SamplerCustomAdvanced takes."""

    def __init__(self, files: dict[str, Path], sampler: str = "euler", steps: int = 6,
                 shifts: tuple[float, float] = (12.0, 3.0), frames: int = 5, side: int = 64, cfg: float = 3.0) -> None:
        import nodes as comfy_nodes
        from comfy_extras import nodes_custom_sampler as cs
        from comfy_extras import nodes_lotus, nodes_minimax_h3 as h3

        self.fps = 24.0
        model = comfy_nodes.UNETLoader().load_unet(files["h3"].name, "default")[0]
        self.model = _out(h3.MiniMaxH3SigmaShift.execute(model, *shifts))[0]
        self.vae = comfy_nodes.VAELoader().load_vae(files["video_vae"].name)[0]
        self.audio_vae = comfy_nodes.VAELoader().load_vae(files["audio_vae"].name)[0]
        positive = _out(nodes_lotus.LotusConditioning.execute())[0]
        negative = comfy_nodes.ConditioningZeroOut().zero_out(positive)[0]
        self.guider = _out(cs.CFGGuider.execute(self.model, positive, negative, cfg))[0]
        self.sampler = _out(cs.KSamplerSelect.execute(sampler))[0]
        self.sigmas = _out(cs.BasicScheduler.execute(self.model, "simple", steps, 1.0))[0]
        self.latent = _out(h3.EmptyMiniMaxH3LatentAV.execute(side, side, frames))[0]
