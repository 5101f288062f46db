"""Tiny random twins of LTX-2 in ComfyUI 0.30.0's own file formats, so tests can load them
through ComfyUI's real loaders and sample them on the CPU in well under a second.

``write`` lays them out in ComfyUI's models folder:

- ``diffusion_models/ltxav_tiny.safetensors``: LTX-AV (joint audio-video), for UNETLoader
- ``diffusion_models/ltxv_tiny.safetensors``: LTX-Video (video only), for UNETLoader
- ``vae/ltxv_vae_tiny.safetensors``: the video VAE, for VAELoader
- ``checkpoints/ltxav_audio_vae_tiny.safetensors``: audio VAE + vocoder, for LTXVAudioVAELoader
- ``vae_approx/taeltx_2.safetensors``: the TAE decoder of LTX-2.x latents (core's TAEHV at 128
  channels; its widths are fixed, 45 MB), for VAELoader, as the bridge's scoring decoder
- ``latent_upscale_models/ltx_spatial_upscaler_x2_tiny.safetensors``: the x2 latent upsampler
  of two-stage graphs (ComfyUI's LatentUpsampler), for LatentUpscaleModelLoader

The modules are ComfyUI's own classes; the architecture travels in the safetensors metadata
``config`` (ComfyUI reads only a few sizes off the shapes and takes the rest from there). There
is no tiny text encoder (Gemma 3's size is fixed in ComfyUI's code): the transformers take
``caption_channels=1024`` so LotusConditioning's constant [1, 2, 1024] conditioning stands in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

SEED = 0

# Video and audio streams of 2 heads each; cross_attention_dim = heads * head_dim (the caption
# projection's width); connector heads * dim = caption_channels; connector_num_layers=0 keeps
# only its learnable registers (the 1-layer connector is 25M parameters).
LTXAV = dict(in_channels=128, audio_in_channels=128, num_attention_heads=2, attention_head_dim=32,
             cross_attention_dim=64, audio_num_attention_heads=2, audio_attention_head_dim=16,
             audio_cross_attention_dim=32, caption_channels=1024, num_layers=1,
             connector_num_attention_heads=8, connector_attention_head_dim=128,
             connector_num_layers=0)
LTXV = dict(in_channels=128, num_attention_heads=2, attention_head_dim=32, cross_attention_dim=64,
            caption_channels=1024, num_layers=1)

# LTX-2's layout (x32 space, x8 time, 128 latent channels) at 8 channels throughout.
# timestep_conditioning stays off: with it, decode adds unseeded noise to the latent.
VIDEO_VAE = {
    "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
    "latent_channels": 128, "patch_size": 4, "norm_layer": "pixel_norm",
    "latent_log_var": "uniform", "use_quant_conv": False, "causal_decoder": False,
    "timestep_conditioning": False, "encoder_base_channels": 8, "decoder_base_channels": 8,
    "encoder_blocks": [["res_x", {"num_layers": 1}], ["compress_space_res", {"multiplier": 1}],
                       ["compress_time_res", {"multiplier": 1}],
                       ["compress_all_res", {"multiplier": 1}],
                       ["compress_all_res", {"multiplier": 1}]],
    "decoder_blocks": [["res_x", {"num_layers": 1, "inject_noise": False}],
                       *[["compress_all", {"residual": True, "multiplier": 1}]] * 3,
                       ["res_x", {"num_layers": 1, "inject_noise": False}]],
}
# 16 kHz stereo mel VAE (8 latent channels x 16 frequency bins, as the transformer expects).
AUDIO_VAE = {
    "model": {"params": {"sampling_rate": 16000, "ddconfig": {
        "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256,
        "downsample_time": False, "in_channels": 2, "out_ch": 2, "ch": 8, "ch_mult": [1, 2, 4],
        "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
        "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"}}},
    "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160}},
}
VOCODER = {"resblock": "1", "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
           "upsample_rates": [5, 4, 2, 2, 2], "upsample_kernel_sizes": [10, 8, 4, 4, 4],
           "upsample_initial_channel": 64, "stereo": True}

FILES = {"ltxav": "diffusion_models/ltxav_tiny.safetensors",
         "ltxv": "diffusion_models/ltxv_tiny.safetensors",
         "vae": "vae/ltxv_vae_tiny.safetensors",
         "audio_vae": "checkpoints/ltxav_audio_vae_tiny.safetensors",
         "tae": "vae_approx/taeltx_2.safetensors",
         "upscaler": "latent_upscale_models/ltx_spatial_upscaler_x2_tiny.safetensors"}
UPSCALER = {"_class_name": "LatentUpsampler", "in_channels": 128, "mid_channels": 32,
            "num_blocks_per_stage": 1, "dims": 3, "spatial_upsample": True,
            "temporal_upsample": False}


def import_comfy(argv: tuple[str, ...] = ("--cpu",)) -> None:
    """ComfyUI's modules parse sys.argv on import: outside its main.py, parse ``argv`` only
    (``--cpu`` unless told otherwise)."""
    if "comfy.cli_args" in sys.modules:
        return
    from comfyctl import comfyui_dir

    sys.path.insert(0, str(comfyui_dir()))
    import comfy.options

    comfy.options.enable_args_parsing()
    argv, sys.argv = sys.argv, [sys.argv[0], *argv]
    try:
        import comfy.cli_args  # noqa: F401
    finally:
        sys.argv = argv


def _random(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's state dict filled with randn * 0.02 from one seeded generator (ComfyUI's
    operations leave the weights uninitialised); the latent statistics as identity so that
    (de)normalising neither flips nor blows up the latents."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, value in module.state_dict().items():
        if key.endswith("std-of-means"):
            sd[key] = torch.ones(value.shape)
        elif key.endswith("mean-of-means"):
            sd[key] = torch.zeros(value.shape)
        else:
            sd[key] = torch.randn(value.shape, generator=gen) * 0.02
    return sd


def state_dicts(seed: int = SEED) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """Each file's float32 state dict and the ``config`` metadata its loader reads."""
    import_comfy()
    import comfy.ops
    from comfy.ldm.lightricks.av_model import LTXAVModel
    from comfy.ldm.lightricks.latent_upsampler import LatentUpsampler
    from comfy.ldm.lightricks.model import LTXVModel
    from comfy.ldm.lightricks.vae.audio_vae import AudioVAE
    from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE
    from comfy.taesd.taehv import TAEHV

    ops = comfy.ops.disable_weight_init
    audio_config = {"audio_vae": AUDIO_VAE, "vocoder": VOCODER}
    audio = _random(AudioVAE(metadata={"config": json.dumps(audio_config)}), seed + 3)
    # the loader keeps only audio_vae.* (as the wrapper's autoencoder.*) and vocoder.*
    audio = {k.replace("autoencoder.", "audio_vae.", 1): v for k, v in audio.items()}
    return {
        "ltxav": (_random(LTXAVModel(**LTXAV, operations=ops), seed), {"transformer": LTXAV}),
        "ltxv": (_random(LTXVModel(**LTXV, operations=ops), seed + 1), {"transformer": LTXV}),
        "vae": (_random(VideoVAE(config=VIDEO_VAE), seed + 2), {"vae": VIDEO_VAE}),
        "audio_vae": (audio, audio_config),
        "tae": (_random(TAEHV(latent_channels=128), seed + 4), {}),
        "upscaler": (_random(LatentUpsampler.from_config(UPSCALER, ops), seed + 5), UPSCALER),
    }


def write(models_dir: Path) -> dict[str, Path]:
    """Writes the files under ``models_dir`` (ComfyUI's models folder); returns their paths
    by name (ltxav, ltxv, vae, audio_vae, tae, upscaler)."""
    from safetensors.torch import save_file

    paths = {}
    for name, (sd, config) in state_dicts().items():
        path = Path(models_dir) / FILES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(path), metadata={"config": json.dumps(config)})
        paths[name] = path
    return paths



def in_process(models_dir: Path) -> dict[str, Path]:
    """Write the twins and point this process's ComfyUI model folders at them (for code that
    drives ComfyUI's nodes directly: tests and benchmarks)."""
    files = write(models_dir)
    import folder_paths
    for kind in ("diffusion_models", "vae", "checkpoints", "vae_approx", "latent_upscale_models"):
        folder_paths.add_model_folder_path(kind, str(Path(models_dir) / kind), is_default=True)
    return files


def _out(node_output):
    return node_output.result if hasattr(node_output, "result") else node_output


class SamplerGraph:
    """A graph built up to what SamplerCustomAdvanced takes (guider, sampler, sigmas, latent) with
    its decoders; subclasses set those, ``prompt`` and ``fps``."""

    guider: object
    sampler: object
    sigmas: torch.Tensor
    latent: dict
    vae: object
    audio_vae: object = None
    prompt: str = "a dog barking"
    fps: float = 25.0

    def reference(self, seed: int):
        """The samples SamplerCustomAdvanced gives for this seed."""
        from comfy_extras import nodes_custom_sampler as cs
        noise = _out(cs.RandomNoise.execute(seed))[0]
        return _out(cs.SamplerCustomAdvanced.execute(noise, self.guider, self.sampler,
                                                     self.sigmas, self.latent))[0]["samples"]

    def generator(self, **kwargs):
        """AVITS_ComfyAVGenerator over this graph, with the node's defaults unless given."""
        from comfyui_avits.nodes.comfy_bridge import ComfyAVGenerator
        return ComfyAVGenerator(self.guider, self.sampler, self.sigmas, self.latent, self.vae,
                                self.audio_vae, self.prompt, self.fps, **kwargs)


class StandardGraph(SamplerGraph):
    """ComfyUI's standard LTX-2 text-to-audio-video graph on the twins, built node by node with
    ComfyUI's own node classes (LotusConditioning stands in for the text encoder), up to what
    SamplerCustomAdvanced takes; ``reference(seed)`` is what SamplerCustomAdvanced gives."""

    def __init__(self, files: dict[str, Path], audio: bool = True, sampler: str = "euler",
                 frames: int = 9, side: int = 64, cfg: float = 3.0) -> None:
        import node_helpers
        import nodes as comfy_nodes
        from comfy_extras import nodes_custom_sampler as cs
        from comfy_extras import nodes_lotus, nodes_lt, nodes_lt_audio

        unet = files["ltxav" if audio else "ltxv"].name
        self.model = comfy_nodes.UNETLoader().load_unet(unet, "default")[0]
        self.vae = comfy_nodes.VAELoader().load_vae(files["vae"].name)[0]
        self.audio_vae = (_out(nodes_lt_audio.LTXVAudioVAELoader.execute(files["audio_vae"].name))[0]
                          if audio else None)
        positive = _out(nodes_lotus.LotusConditioning.execute())[0]
        if not audio:  # LTX-Video reads the T5 encoder's attention mask; a full one here
            positive = node_helpers.conditioning_set_values(
                positive, {"attention_mask": torch.ones(positive[0][0].shape[:2], dtype=torch.long)})
        negative = comfy_nodes.ConditioningZeroOut().zero_out(positive)[0]
        positive, negative = _out(nodes_lt.LTXVConditioning.execute(positive, negative, 25.0))[:2]
        self.guider = _out(cs.CFGGuider.execute(self.model, positive, negative, cfg))[0]
        self.sampler = _out(cs.KSamplerSelect.execute(sampler))[0]
        self.sigmas = torch.tensor([1.0, 0.975, 0.909375, 0.725, 0.421875, 0.0])
        video = _out(nodes_lt.EmptyLTXVLatentVideo.execute(side, side, frames, 1))[0]
        if audio:
            sound = _out(nodes_lt_audio.LTXVEmptyLatentAudio.execute(frames, 25, 1, self.audio_vae))[0]
            self.latent = _out(nodes_lt.LTXVConcatAVLatent.execute(video, sound))[0]
        else:
            self.latent = video

