"""Tiny random twins of JavisDiT's decoders in the published formats and file names, for tests
and benchmarks: OpenSora-VAE-v1.2 (``config.json`` + ``model.safetensors`` with the official
key names) and the ``vae`` / ``vocoder`` folders of cvssp/audioldm2 (diffusers / transformers
``save_pretrained``). Narrow layers, the real up/down-sampling factors; a fixed seed.

    .venv/bin/python scripts/tiny_javisdit_decoders.py MODELS_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

VIDEO_DIR, AUDIO_DIR = "javisdit/OpenSora-VAE-v1.2", "javisdit/audioldm2"
VIDEO_SHIFT, VIDEO_SCALE = (-0.10, 0.34, 0.27, 0.98), (3.85, 2.32, 2.33, 3.06)


def _randomise(module: torch.nn.Module, gen: torch.Generator, std: float = 0.05) -> None:
    """Non-trivial weights everywhere (diffusers and MAGVIT zero nothing, but this keeps norms
    and biases off their init so every tensor matters)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)


def _video(folder: Path, gen: torch.Generator) -> Path:
    from diffusers import AutoencoderKL

    from comfyui_avits.generators.javisdit.video_vae import TemporalSpec, TemporalVAE

    spatial = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                            block_out_channels=(32, 32, 32, 32), norm_num_groups=32,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    # widths change between levels so the 1x1x1 skip convs exist, time halves twice as published
    temporal = TemporalVAE(TemporalSpec(channels=4, latent=4, base=32, widths=(32, 64, 32, 32), blocks=1,
                                        time_down=(False, True, True)))
    _randomise(spatial, gen)
    _randomise(temporal, gen)
    state = {f"spatial_vae.module.{k}": v for k, v in spatial.state_dict().items()}
    state.update({f"temporal_vae.{k}": v for k, v in temporal.state_dict().items()})
    state["scale"] = torch.tensor(VIDEO_SCALE).view(1, 4, 1, 1, 1)
    state["shift"] = torch.tensor(VIDEO_SHIFT).view(1, 4, 1, 1, 1)
    folder.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    # the layout of the published config.json (a transformers PretrainedConfig of
    # VideoAutoencoderPipeline); the image VAE's own config lives in the PixArt repo it names
    config = {
        "architectures": ["VideoAutoencoderPipeline"], "model_type": "VideoAutoencoderPipeline",
        "cal_loss": False, "freeze_vae_2d": False, "from_pretrained": None, "micro_frame_size": 17,
        "scale": list(VIDEO_SCALE), "shift": list(VIDEO_SHIFT), "torch_dtype": "float32",
        "vae_2d": {"type": "VideoAutoencoderKL", "from_pretrained": "PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers",
                   "subfolder": "vae", "micro_batch_size": 4, "local_files_only": False},
        "vae_temporal": {"type": "VAE_Temporal_SD", "from_pretrained": None},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def _audio(root: Path, gen: torch.Generator) -> Path:
    from diffusers import AutoencoderKL
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    # cvssp/audioldm2 vae/config.json with narrow blocks: 3 levels (x4 in time and mel), 1 -> 8
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=8, layers_per_block=1,
                        block_out_channels=(32, 32, 32), norm_num_groups=32, sample_size=1024,
                        scaling_factor=0.4110932946205139,
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)
    # vocoder/config.json with narrow channels: 64 mels, x160 (5*4*2*2*2), 16 kHz
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=32, upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3], [1, 3]],
        normalize_before=False))
    _randomise(vae, gen)
    _randomise(vocoder, gen, std=0.1)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    vocoder.save_pretrained(root / "vocoder", safe_serialization=True)
    return root


def write(models_dir: Path) -> dict[str, Path]:
    """Writes both twins under ``models_dir`` (ComfyUI's models folder layout) and returns their
    folders: {"video_vae": .../javisdit/OpenSora-VAE-v1.2, "audio_vae": .../javisdit/audioldm2}."""
    models_dir = Path(models_dir)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return {"video_vae": _video(models_dir / VIDEO_DIR, gen), "audio_vae": _audio(models_dir / AUDIO_DIR, gen)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    import os
    import tempfile

    # importable as comfyui_avits from a standalone run, as tests/conftest.py does
    link = Path(tempfile.mkdtemp(prefix="avits-import-")) / "comfyui_avits"
    os.symlink(Path(__file__).resolve().parents[1], link)
    sys.path.insert(0, str(link.parent))
    for name, path in write(Path(sys.argv[1])).items():
        print(name, path)
