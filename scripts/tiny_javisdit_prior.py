"""A tiny random JavisDiT ST-prior in the published folder layout (``config.json`` as
transformers writes an ``STIBPriorExtractor`` config, ``model.safetensors``), for tests and the
tiny model set: ``.venv/bin/python scripts/tiny_javisdit_prior.py MODELS_DIR``.

The weights come from the modules the reference builds (``torch.nn.Transformer`` under
``prior_extractor``), not from the pack's own classes, so loading them checks the names too.
The text width is the tiny ImageBind twin's (64, scripts/tiny_imagebind.py); the token counts
(32 + 32) and the prior width (128) are the published ones, which the DiT's prior blocks expect.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

FOLDER = ("javisdit", "JavisDiT-v0.1-prior")
TINY = dict(text_emb_dim=64, spatial_token_num=32, temporal_token_num=32, hidden_size=32,
            out_dim=128, nhead=2, num_encoder_layers=1, num_decoder_layers=1, feedforward_scale=4)


def config(**sizes: int) -> dict:
    """config.json as ``STIBPriorExtractorConfig.save_pretrained`` writes it, with TINY sizes."""
    return {"architectures": ["STIBPriorExtractor"], "model_type": "STIBPriorExtractor",
            **TINY, **sizes, "dropout": 0.0, "apply_sampling": True, "pred_onset": False,
            "encode_va": False, "qk_norm": True, "enable_flash_attn": False,
            "enable_layernorm_kernel": False, "imagebind_ckpt_path": "./checkpoints",
            "torch_dtype": "float32"}


def state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the reference's module names, at the sizes of ``cfg``."""
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "enable_nested_tensor")  # norm_first, as the reference
        torch.manual_seed(seed)
        h = cfg["hidden_size"]
        modules = nn.Module()
        modules.spatial_query_emb = nn.Parameter(torch.randn(1, cfg["spatial_token_num"], h))
        modules.temporal_query_emb = nn.Parameter(torch.randn(1, cfg["temporal_token_num"], h))
        modules.in_proj = nn.Linear(cfg["text_emb_dim"], h)
        modules.prior_extractor = nn.Transformer(
            d_model=h, nhead=cfg["nhead"], num_encoder_layers=cfg["num_encoder_layers"],
            num_decoder_layers=cfg["num_decoder_layers"], dim_feedforward=h * cfg["feedforward_scale"],
            dropout=0.0, activation=nn.GELU(approximate="tanh"), batch_first=True, norm_first=True)
        modules.out_proj = nn.Linear(h, 2 * cfg["out_dim"])
        for name, p in modules.named_parameters():  # non-trivial norms and biases too
            if name.endswith("bias") or ".norm" in name:
                p.data.add_(0.1 * torch.randn_like(p))
    return {k: v.detach().contiguous() for k, v in modules.state_dict().items()}


def write(models_dir: Path, seed: int = 0, **sizes: int) -> dict[str, Path]:
    """``models_dir/javisdit/JavisDiT-v0.1-prior/{config.json, model.safetensors}``; ``sizes``
    override TINY (e.g. ``out_dim`` for a DiT twin with another prior width)."""
    folder = Path(models_dir).joinpath(*FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = config(**sizes)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file(state_dict(cfg, seed), str(folder / "model.safetensors"))
    return {"folder": folder, "config": folder / "config.json", "weights": folder / "model.safetensors"}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python scripts/tiny_javisdit_prior.py MODELS_DIR")
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
