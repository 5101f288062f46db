"""Tiny random twins of JavisDiT v0.1's files in the published layouts, under ComfyUI's models
folder, so tests load them through the same code as the real ones:

- ``javisdit/JavisDiT-v0.1-jav-240p4s/``: the DiT (config.json + model.safetensors)
- ``javisdit/JavisDiT-v0.1-prior/``: the spatio-temporal prior (on the tiny ImageBind's text)
- ``javisdit/OpenSora-VAE-v1.2/``: the video VAE
- ``javisdit/audioldm2/{vae,vocoder}/``: the audio VAE and HiFi-GAN vocoder
- ``text_encoders/t5xxl_fp16.safetensors``: a T5 encoder in ComfyUI's single-file layout

The DiT keeps the real token counts (300 text tokens, 32 + 32 prior tokens of 128 channels) and
patch sizes; only the widths and depth shrink, its caption width matching the tiny T5.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from tiny_ltx import SamplerGraph, _out, import_comfy

sys.path.insert(0, str(Path(__file__).parent))

DIT_FOLDER = "JavisDiT-v0.1-jav-240p4s"
DIT = dict(hidden_size=64, depth=2, num_heads=4, mlp_hidden=128, caption_channels=32)


def dit_state_dict(seed: int = 0, **sizes) -> tuple[dict, dict[str, torch.Tensor]]:
    """The config.json fields and random weights of a VASTDiT3 (every weight random, gammas and
    zero-initialised projections included, so every path of the model matters)."""
    from comfyui_avits.generators.javisdit.dit import DiTConfig, VASTDiT3

    cfg = DiTConfig(**{**DIT, **sizes})
    torch.manual_seed(seed)
    model = VASTDiT3(cfg)
    sd = {}
    for name, value in model.state_dict().items():
        if name == "rope.freqs":
            sd[name] = value.clone()
        elif name.endswith("norm.weight"):
            sd[name] = 1 + 0.1 * torch.randn_like(value)
        else:
            sd[name] = torch.randn_like(value) * (0.5 / max(value.shape[-1], 1) ** 0.5 if value.ndim > 1 else 0.1)
    config = {"architectures": ["VASTDiT3"], "model_type": "VASTDiT3",
              "hidden_size": cfg.hidden_size, "depth": cfg.depth, "num_heads": cfg.num_heads,
              "mlp_ratio": cfg.mlp_hidden / cfg.hidden_size, "in_channels": cfg.in_channels,
              "patch_size": list(cfg.patch_size), "audio_in_channels": cfg.audio_in_channels,
              "audio_patch_size": list(cfg.audio_patch_size), "caption_channels": cfg.caption_channels,
              "model_max_length": cfg.text_tokens, "pred_sigma": True, "qk_norm": True,
              "spatial_prior_len": cfg.spatial_prior_len, "temporal_prior_len": cfg.temporal_prior_len,
              "st_prior_channel": cfg.prior_channels, "input_sq_size": cfg.input_sq_size}
    return config, sd


def write_dit(models_dir: Path, folder: str = DIT_FOLDER, **sizes) -> Path:
    path = Path(models_dir) / "javisdit" / folder
    path.mkdir(parents=True, exist_ok=True)
    config, sd = dit_state_dict(**sizes)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path / "model.safetensors"))
    return path


def write(models_dir: Path, imagebind: bool = True) -> dict[str, Path]:
    """Every JavisDiT file, and (unless told not to) the tiny ImageBind the prior reads."""
    import tiny_imagebind
    import tiny_javisdit_decoders
    import tiny_javisdit_prior
    import tiny_t5

    models_dir = Path(models_dir)
    out = {"dit": write_dit(models_dir), "prior": tiny_javisdit_prior.write(models_dir)["folder"]}
    out.update(tiny_javisdit_decoders.write(models_dir))
    out["t5"] = next(iter(tiny_t5.write(models_dir).values()))
    if imagebind:
        out["imagebind"] = tiny_imagebind.write(models_dir)
    return out


def in_process(models_dir: Path) -> dict[str, Path]:
    """Write the twins and point this process's ComfyUI model folders at them."""
    import_comfy()
    files = write(models_dir)
    import folder_paths
    for kind in ("javisdit", "text_encoders", "imagebind"):
        folder_paths.add_model_folder_path(kind, str(Path(models_dir) / kind), is_default=True)
    return files


class StandardGraph(SamplerGraph):
    """The JavisDiT graph of the shipped workflows, built node by node from this pack's and
    ComfyUI's node classes up to what SamplerCustomAdvanced takes (CFGGuider cfg 7, euler, our
    sigmas); ``reference(seed)`` is what SamplerCustomAdvanced gives."""

    def __init__(self, prompt: str = "a dog barks twice in a sunny garden", num_frames: int = 17,
                 height: int = 64, width: int = 96, steps: int = 30, cfg: float = 7.0) -> None:
        from comfy_extras import nodes_custom_sampler as cs

        from comfyui_avits.nodes import imagebind, javisdit

        self.fps = 24.0
        self.model, self.vae, self.audio_vae, self.text = _out(javisdit.JavisDiTLoaderNode.execute(
            javisdit.DIT, javisdit.PRIOR, javisdit.VIDEO_VAE, javisdit.AUDIO_VAE, javisdit.T5_FILE, "fp32"))
        self.imagebind = _out(imagebind.ImageBindLoaderNode.execute("imagebind_huge.pth", "fp32"))[0]
        self.prompt = prompt
        positive, negative = _out(javisdit.JavisDiTTextEncodeNode.execute(self.text, self.imagebind, prompt))
        # a clip smaller than the node's reference sizes (17 frames), so CPU tests stay quick
        self.positive, self.negative, self.latent = javisdit.empty_latent(
            positive, negative, num_frames, height, width, 24.0)
        self.sigmas = _out(javisdit.JavisDiTSchedulerNode.execute(steps, self.latent))[0]
        self.guider = _out(cs.CFGGuider.execute(self.model, self.positive, self.negative, cfg))[0]
        self.sampler = _out(cs.KSamplerSelect.execute("euler"))[0]



if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_javisdit.py MODELS_DIR")
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
