"""A tiny random T5 v1.1 encoder in the layout of ComfyUI's single-file ``t5xxl_fp16.safetensors``
(transformers key names ``shared.weight``, ``encoder.block.N...``, fp16), for tests and the tiny
model set: ``.venv/bin/python scripts/tiny_t5.py MODELS_DIR``.

The vocabulary is the real one (32128 rows), so ComfyUI's T5 tokenizer drives it; the rest is
tiny (d_model 32, 2 layers, 2 heads of 16, gated-GELU d_ff 64). The weights come from
transformers' ``T5EncoderModel``, not the pack's code, so loading them checks the key names too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

FILE = ("text_encoders", "t5xxl_fp16.safetensors")
TINY = dict(vocab_size=32128, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)
REAL_FILE_BYTES = 50 * 2**20  # anything larger at the target is taken for a real T5 and kept


def state_dict(seed: int = 0, **sizes: int) -> dict[str, torch.Tensor]:
    """Random fp16 weights of a gated-GELU T5 encoder at TINY (or ``sizes``), non-trivial
    layer norms, without the ``encoder.embed_tokens.weight`` alias of ``shared.weight``."""
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(**{**TINY, **sizes}, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
                   use_cache=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = T5EncoderModel(cfg)
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.data.add_(0.2 * torch.randn_like(p))
    sd = model.state_dict()
    sd.pop("encoder.embed_tokens.weight")
    return {k: v.detach().to(torch.float16).contiguous() for k, v in sd.items()}


def write(models_dir: Path, seed: int = 0) -> dict[str, Path]:
    """``models_dir/text_encoders/t5xxl_fp16.safetensors``, the name the shipped workflows use.
    A file of that name over 50 MB is a real T5 and is never overwritten."""
    path = Path(models_dir).joinpath(*FILE)
    if path.is_file() and path.stat().st_size > REAL_FILE_BYTES:
        raise FileExistsError(f"{path} is {path.stat().st_size / 2**30:.1f} GiB, a real T5 "
                              f"encoder; not overwriting it with the tiny twin")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_dict(seed), str(path))
    return {"t5": path}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: .venv/bin/python scripts/tiny_t5.py MODELS_DIR")
    for name, path in write(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
