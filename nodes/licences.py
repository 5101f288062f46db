"""What each node's weights let a user do, said on the canvas (in the node's description) and
in the README's licence table. Where a licence was not found it says so; non-commercial and
unstated ones are marked."""

from __future__ import annotations

NON_COMMERCIAL = "NON-COMMERCIAL"
UNSTATED = "licence not stated"

LICENCES: dict[str, str] = {
    "none": "No weights (the pack's own code, GPL-3.0).",
    "imagebind": f"Weights: ImageBind, CC BY-NC 4.0 ({NON_COMMERCIAL}); bring your own copy.",
    "videoreward": "Weights: VideoReward, Apache-2.0 per its model card (base Qwen2-VL-2B, whose "
                   "licence was not checked here); code MIT.",
    "qwen2vl": "Weights: the Qwen2-VL model you give it, under its own licence (see its model card).",
    "javisdit": f"Weights: JavisDiT ({UNSTATED}), OpenSora VAE 1.2 (Apache-2.0), AudioLDM2 "
                f"(CC BY-NC-SA 4.0, {NON_COMMERCIAL}), ImageBind for the prior (CC BY-NC 4.0, "
                f"{NON_COMMERCIAL}), T5-XXL (not checked): {NON_COMMERCIAL} as a whole.",
    "mmdisco": f"Weights: VideoCrafter2, Auffusion (its code CC BY-NC-SA 4.0, {NON_COMMERCIAL}) "
               f"and MMDisCo's coupling (weights' licences not verified): treat as {NON_COMMERCIAL}.",
    "synchformer": f"Code: MIT. Weights: Synchformer's, {UNSTATED} (trained on AudioSet, "
                   "initialised from MotionFormer and AST); check before commercial use.",
    "vbench": "Weights: DINO ViT-B/16 (Apache-2.0), OpenAI CLIP ViT-B/32 and ViT-L/14 (MIT), LAION's "
              "aesthetic predictor (MIT); imaging_quality's MUSIQ (Google's SPAQ checkpoint as "
              f"IQA-PyTorch converts it: {UNSTATED}) and motion_smoothness's AMT-S "
              f"(CC BY-NC 4.0, {NON_COMMERCIAL}) only where those are switched on.",
    "comfy": "Weights: the model you connect, under its own licence (LTX-2: Lightricks' LTX-2 "
             "licence; MiniMax H3: read by a third party as giving no rights in the EU, UK, South "
             "Korea or USA without MiniMax's authorisation, not verified here).",
}


def licensed(description: str, weights: str) -> str:
    """A node's description with its weights' licence appended."""
    return f"{description} {LICENCES[weights]}"
