"""Regenerates the templates from their API-format twins (workflows/api/*.json) through the real
ComfyUI frontend, so the UI files always match the node definitions: it loads each API graph,
adds notes, lays the nodes out in titled groups readable at fit view, gives every model loader
ComfyUI's download metadata (``properties.models``, read by the frontend's missing-models list)
and saves what the frontend serialises (workflows/<name>.json). It then opens each saved file,
fits the view in a 1600 x 1000 window and keeps that screenshot (docs/templates/<name>.png) and
a thumbnail for ComfyUI's template browser (workflows/<name>.jpg, the name it looks for). Run it
after changing a node or an API workflow:

    .venv/bin/python scripts/build_workflows.py

ComfyUI 0.30.0 lists a pack's templates by file name, in directory order, and frontend 1.47.12
shows the file name as title and description; the file names are fixed, so each template's
title, order and what it needs are written where a newcomer looks: its thumbnail, the group
and note at its top left, ``extra.avits`` in the file and docs/templates/README.md.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from comfyctl import REPO, ComfyServer  # noqa: E402
from browser import open_frontend  # noqa: E402

# Layout, in canvas units. A node's title bar (30) sits above its position and its badge (the
# pack's name, [BETA]: 20) above that; groups sit in rows and columns. The frontend's fit view
# scales the graph's bounds to 75 % of the window and draws nodes without text below a scale of
# 8 / 14: a 1600 x 1000 window shows text up to about 2100 x 1300.
TITLE, BADGE, GAP, PAD, GROUP_GAP, COLUMN_GAP = 30, 20, 20, 14, 24, 30
VIEWPORT = (1600, 1000)
# Node sizes that keep the canvas small and every widget readable (never below what the
# frontend computes a node needs): [width, height], 0 for the frontend's own.
MIN_WIDTH = 220
SIZES = {"CLIPTextEncode": [340, 80], "AVITS_ComfyAVGenerator": [320, 0], "AVITS_BestOfN": [320, 0],
         "AVITS_EvoSearch": [320, 0], "AVITS_PrunedBestOfN": [320, 0], "AVITS_DraftSearch": [320, 0],
         "AVITS_ToyAVGenerator": [340, 0],
         "AVITS_MMDisCoGenerator": [340, 0], "AVITS_JavisDiTTextEncode": [340, 80]}

# Group colours: a group's title is drawn in its colour, so light ones.
COLORS = {"model": "#7a9cd6", "text": "#d1ad4b", "sampling": "#8fa8c8", "verifiers": "#86b886",
          "aggregation": "#c08fd0", "search": "#de9466", "output": "#86bdb3"}


@dataclass(frozen=True)
class Group:
    """A titled box of nodes: ``rows`` of API node ids or note keys, each row left to right."""

    title: str
    role: str
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Column:
    """Items stacked top to bottom, each as wide as the column, the last one down to its end."""

    items: tuple


@dataclass(frozen=True)
class Row:
    """Items side by side, as high as the row, the last one out to its end."""

    items: tuple


def col(*items) -> Column:
    return Column(items)


def row(*items) -> Row:
    return Row(items)


@dataclass(frozen=True)
class Template:
    """What a newcomer reads first: a title, what the template needs (the thumbnail's badge), a
    description, and the canvas: groups of nodes and notes in rows and columns."""

    title: str
    needs: str
    description: str
    layout: Row | Column
    notes: dict[str, tuple[int, str]] = field(default_factory=dict)
    """key -> (width, markdown), width 0: as wide as its group; the note "about" (top left) is
    made of the fields above and ``details``."""
    details: str = ""


# --- model files: where ComfyUI's loaders read them and where the official ones are published ----
# {(model folder, file or folder name as the workflows use it): public address}. ImageBind,
# AudioLDM2 and Auffusion are CC BY-NC-SA: their official addresses, never a copy. H3's files are
# published under other names (ComfyUI's own H3 template uses them): the address is the
# file with the loader's role, saved under the loader's name. LTX-2.5 is published gated and
# split, not as one checkpoint: its repository.
MODELS = {
    ("checkpoints", "ltx-2-19b-distilled.safetensors"):
        "https://huggingface.co/Lightricks/LTX-2/resolve/main/ltx-2-19b-distilled.safetensors",
    ("text_encoders", "gemma_3_12B_it.safetensors"):
        "https://huggingface.co/Comfy-Org/ltx-2/resolve/main/split_files/text_encoders/gemma_3_12B_it.safetensors",
    ("checkpoints", "ltx-2.5-distilled.safetensors"): "https://huggingface.co/Lightricks/LTX-2.5",
    ("latent_upscale_models", "ltx-2.5-spatial-upscaler-x2.safetensors"):
        "https://huggingface.co/Lightricks/LTX-2.5/resolve/main/latent_upscale_models/"
        "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors",
    ("vae_approx", "taeltx_2.safetensors"):
        "https://huggingface.co/Kijai/LTXV2_comfy/resolve/main/VAE/taeltx_2.safetensors",
    ("diffusion_models", "minimax_h3_bf16.safetensors"):
        "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/diffusion_models/"
        "minimax_h3_fl2va_pruned_int8_convrot.safetensors",
    ("text_encoders", "minimax_h3_qwen3vl_32b.safetensors"):
        "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/text_encoders/"
        "qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors",
    ("vae", "minimax_h3_video_vae.safetensors"):
        "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/vae/minimax_h3_video_vae_fp16.safetensors",
    ("vae", "minimax_h3_audio_vae.safetensors"):
        "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/vae/minimax_h3_audio_vae_fp32.safetensors",
    ("text_encoders", "t5xxl_fp16.safetensors"):
        "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors",
    ("imagebind", "imagebind_huge.pth"): "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
    ("videoreward", "VideoReward"): "https://huggingface.co/KwaiVGI/VideoReward",
    ("javisdit", "JavisDiT-v0.1-jav-240p4s"): "https://huggingface.co/JavisVerse/JavisDiT-v0.1-jav-240p4s",
    ("javisdit", "JavisDiT-v0.1-prior"): "https://huggingface.co/JavisVerse/JavisDiT-v0.1-prior",
    ("javisdit", "OpenSora-VAE-v1.2"): "https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2",
    ("javisdit", "audioldm2"): "https://huggingface.co/cvssp/audioldm2",
    ("mmdisco", "videocrafter2/model.ckpt"):
        "https://huggingface.co/VideoCrafter/VideoCrafter2/resolve/main/model.ckpt",
    ("mmdisco", "auffusion-full"): "https://huggingface.co/auffusion/auffusion-full",
    ("mmdisco", "auffusion_videocrafter2_vggsound.pt"):
        "https://huggingface.co/AkioHayakawa/MMDisCo/resolve/main/auffusion_videocrafter2_vggsound.pt",
}
# The model folder each loader input reads from.
LOADERS = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "LTXVAudioVAELoader": {"ckpt_name": "checkpoints"},
    "LTXAVTextEncoderLoader": {"text_encoder": "text_encoders", "ckpt_name": "checkpoints"},
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "VAELoader": {"vae_name": "vae"},
    "LatentUpscaleModelLoader": {"model_name": "latent_upscale_models"},
    "AVITS_ImageBindLoader": {"ckpt_name": "imagebind"},
    "AVITS_VideoRewardLoader": {"folder": "videoreward"},
    "AVITS_JavisDiTLoader": {"dit": "javisdit", "prior": "javisdit", "video_vae": "javisdit",
                             "audio_vae": "javisdit", "t5": "text_encoders"},
    "AVITS_MMDisCoLoader": {"videocrafter2": "mmdisco", "auffusion": "mmdisco", "coupling": "mmdisco"},
}
VIDEO_TAES = ("taehv", "lighttaew2_2", "lighttaew2_1", "lighttaehy1_5", "taeltx_2")
"""VAELoader reads these from models/vae_approx/ (ComfyUI's nodes.VAELoader.video_taes)."""


def model_folder(class_type: str, name: str, value: str) -> str:
    folder = LOADERS[class_type][name]
    if class_type == "VAELoader" and value.rsplit(".", 1)[0] in VIDEO_TAES:
        return "vae_approx"
    return folder


def models_of(api: dict) -> dict[str, list[dict]]:
    """``properties.models`` for every loader of an API graph: {node id: [{name, url, directory}]}."""
    out = {}
    for node_id, node in api.items():
        inputs = LOADERS.get(node["class_type"], {})
        entries = []
        for name in inputs:
            value = node["inputs"][name]
            folder = model_folder(node["class_type"], name, value)
            entries.append({"name": value, "url": MODELS[folder, value], "directory": folder})
        if entries:
            out[node_id] = entries
    return out


# --- notes ------------------------------------------------------------------------------------
IMAGEBIND = ("ImageBind: `imagebind/imagebind_huge.pth` from "
             "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth (CC BY-NC-SA 4.0: "
             "non-commercial; not shipped) and "
             "`pip install --no-deps imagebind-unofficial==0.1.1 ftfy regex iopath einops timm`")
VIDEOREWARD = "VideoReward: the folder `videoreward/VideoReward/` from https://huggingface.co/KwaiVGI/VideoReward"
TOY_VERIFIERS = ("### Verifiers and ARW\nOne text verifier plus one audio-video sync verifier: "
                 "either alone gets *hacked* (its own metric rises, the other falls). "
                 "**ARW state** learns one scale per verifier from every reward it has seen, "
                 "across prompts and restarts; toggle **reset** to start over. **ARW scales** "
                 "shows what it learned after the search.")
PAPER_VERIFIERS = ("### Verifiers and ARW\n**VideoReward-TA** (does the video show the prompt?) "
                   "plus **JavisScore** (does the sound move with the picture?) under ARW: the "
                   "study's best pair; either alone gets *hacked*. The ARW state keeps learning "
                   "across prompts; a failed prompt leaves it unchanged.")
MISSING = ("ComfyUI lists the files its loaders lack, with their downloads (Run, then the errors "
           "panel); the pack's loaders name theirs when queued. In `ComfyUI/models/`:")
LTX2_FILES = (
    f"### Model files\n{MISSING}\n"
    "- `checkpoints/ltx-2-19b-distilled.safetensors` (model, VAEs, vocoder) and "
    "`text_encoders/gemma_3_12B_it.safetensors`\n"
    f"- {VIDEOREWARD}\n- {IMAGEBIND}\n\n"
    "### Settings\nDistilled model (this graph): the 8 manual sigmas, euler, CFG 1. Full model: "
    "LTXVScheduler (20 steps, max_shift 2.05, base_shift 0.95) for the sigmas, CFG about 4.")
LTX25_FILES = (
    "### Search stage 1 only\n8 euler_ancestral steps at half resolution, the x2 latent upsampler, "
    "3 more steps. Best-of-8 runs in stage 1, every candidate from its own seed, scored through "
    "the TAE decoder (the full decoder takes minutes a clip); only the winner's LATENT goes on, "
    "once. Check how well the TAE ranks on your prompts: "
    "`scripts/evaluate evaluation/configs/decoder_agreement.toml`.\n\n"
    f"### Model files\n{MISSING}\n"
    "- LTX-2.5, published gated and split at https://huggingface.co/Lightricks/LTX-2.5 (accept "
    "its licence there): the checkpoint here stands for its parts, point the loaders at yours; "
    "its x2 latent upscaler in `latent_upscale_models/`\n"
    "- `vae_approx/taeltx_2.safetensors`, the TAE decoder core uses for previews\n"
    f"- {VIDEOREWARD}\n- {IMAGEBIND}")
H3_FILES = (
    f"### Model files\n{MISSING}\n"
    "- H3's DiT (`diffusion_models/`), Qwen3-VL-32B (`text_encoders/`, CLIPLoader type minimax), "
    "its video and audio VAEs (`vae/`): the files ComfyUI's own H3 template uses, offered under "
    "these loaders' names (rename a browser download, or pick yours in the loader)\n"
    f"- {VIDEOREWARD}\n- {IMAGEBIND}\n\n"
    "**Licence:** H3's weights carry MiniMax's own terms (a third party reads them as granting no "
    "rights in the EU, UK, South Korea or USA without MiniMax's authorisation): check them first.")
H3_SAMPLING = (
    "\n\n### How H3 is searched\nOne sample per model call: the candidates run one after the "
    "other whatever max_batch says. Its audio runs on its own schedule (MiniMaxH3SigmaShift: "
    "video 12, audio 3): each stream is mutated at its own noise level and scored on its own "
    "clean estimate. 20 steps, CFG 5 (a turbo LoRA: 8 or 4 steps, CFG 1); steps written as "
    "fractions (0.3, 0.2:0.5) fit any step count.")
JAVISDIT_FILES = (
    "### Model files\nIn `ComfyUI/models/` (the loaders name what is missing when queued):\n"
    "- `javisdit/`: the folders JavisDiT-v0.1-jav-240p4s "
    "(https://huggingface.co/JavisVerse/JavisDiT-v0.1-jav-240p4s), JavisDiT-v0.1-prior "
    "(https://huggingface.co/JavisVerse/JavisDiT-v0.1-prior), OpenSora-VAE-v1.2 "
    "(https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2) and audioldm2 with its vae/ and "
    "vocoder/ (https://huggingface.co/cvssp/audioldm2, CC BY-NC-SA 4.0)\n"
    "- `text_encoders/t5xxl_fp16.safetensors` (the T5-XXL file Flux uses)\n"
    f"- {IMAGEBIND} (also the prior's text features)\n- {VIDEOREWARD}\n\n"
    "`pip install --no-deps diffusers==0.42.1` for the audio VAE.")
JAVISDIT_SAMPLING = (
    "### The reference's sampling\n4 s at 240p 9:16 (102 frames at 24 fps, 16 kHz sound), 30 "
    "Euler steps on the JavisDiT scheduler's exact shifted sigmas, CFG 7 against the learned "
    "null caption and prior. Candidate k is SamplerCustomAdvanced with seed + k. **max_batch**: "
    "candidates through the DiT at once (memory).")
MMDISCO_FILES = (
    "### Model files\nIn `ComfyUI/models/mmdisco/` (the loader names what is missing when "
    "queued):\n"
    "- `videocrafter2/model.ckpt`: base_512_v2 of https://huggingface.co/VideoCrafter/VideoCrafter2 "
    "(if it does not load with weights_only, run scripts/convert_videocrafter2.py once)\n"
    "- `auffusion-full/`: https://huggingface.co/auffusion/auffusion-full (CC BY-NC-SA 4.0)\n"
    "- `auffusion_videocrafter2_vggsound.pt`: https://huggingface.co/AkioHayakawa/MMDisCo\n"
    f"- {VIDEOREWARD}\n- {IMAGEBIND}\n\n"
    "`pip install --no-deps diffusers==0.42.1 open_clip_torch==3.3.0 ftfy regex timm`")

SEARCH_NOTES = {
    "best_of_n": ("### Best-of-N\nSamples N candidates from seeds seed..seed+N-1, scores each with "
                  "every verifier, combines the rewards and returns the best frames, audio, latent "
                  "and report (also saved as mp4 + report.json + plot.png in output/AVITS/). "
                  "**n**: candidates; more n costs n x steps denoiser calls and finds better "
                  "samples."),
    "evosearch": ("### EvoSearch\nEvolves the initial noise and intermediate states. At each "
                  "evolution step (0 = the noise, 10 = after 10 of 30 steps) it keeps the best "
                  "**elites** seen there and fills the next population with mutated tournament "
                  "winners. **population_sizes**: the first generation, then one per evolution "
                  "step. **mutation_rate** (beta): noise becomes sqrt(1-beta^2) x + beta eps. "
                  "Unmutated elites are never denoised again."),
    "draft": ("### Draft, then commit\nExplores N seeds with the cheap **draft** generator (the "
              "same model in fewer steps, drawing the same noise), scores the drafts (ARW does not "
              "learn from them) and runs only the best **commit** of them again in full; the best "
              "committed candidate wins. The report gives each draft's score, whether it was "
              "committed, and each phase's NFE and seconds."),
    "pruned": ("### Pruned Best-of-N\nStarts N candidates and at each pruning step of the "
               "schedule (step:fraction kept) scores every survivor's predicted clean sample and "
               "keeps the best fraction; survivors finish exactly as in Best-of-N, at a fraction "
               "of its compute (the report counts the NFE saved). Intermediate scores never enter "
               "the ARW state."),
}


# --- the templates, in the order a newcomer should open them ----------------------------------
def toyav(search: str, verifiers: tuple[tuple[str, ...], ...], sync_note: str = TOY_VERIFIERS,
          generators: tuple[str, ...] = ("1",)) -> dict:
    """The ToyAV graphs: generator, verifiers, aggregation and search, left to right."""
    return {"layout": row(
        col(Group("1 · Generator: ToyAV (built in)", "sampling", (("about",), generators))),
        col(Group("2 · Verifiers", "verifiers", verifiers),
            Group("3 · Aggregation: ARW", "aggregation", (("5", "7"), ("verifiers_note",)))),
        col(Group("4 · Search", "search", (("6",), ("search_note",))))),
        "notes": {"verifiers_note": (0, sync_note), "search_note": (0, SEARCH_NOTES[search])}}


def ltx2(search: str, search_note: str, sampling: tuple[tuple[str, ...], ...] = (
        ("7", "8"), ("9", "10"), ("11", "12"), ("13",))) -> dict:
    """The LTX-2 text-to-audio-video graph with a search in place of SamplerCustomAdvanced."""
    return {"details": LTX2_FILES, "layout": row(
        col(Group("1 · Models", "model", (("about",), ("1", "2"), ("3",))),
            Group("2 · Prompt", "text", (("4",), ("5",), ("6",)))),
        col(Group("3 · LTX-2 sampling: what the search runs", "sampling",
                  sampling),
            Group("4 · Verifiers", "verifiers", (("14", "15"), ("16", "17", "18")))),
        col(Group("5 · Aggregation: ARW", "aggregation", (("19", "verifiers_note"),)),
            Group(f"6 · Search: {search}", "search", (("20", "search_note"),)),
            Group("7 · The winner, decoded and saved", "output", (("21", "22", "23"), ("24", "25"))))),
        "notes": {"verifiers_note": (280, PAPER_VERIFIERS), "search_note": (280, search_note)}}


def h3(search: str, search_note: str) -> dict:
    """MiniMax H3's text-to-audio-video graph with a search in place of SamplerCustomAdvanced."""
    return {"details": H3_FILES, "layout": row(
        col(Group("1 · Models", "model", (("about",), ("1", "2"), ("3",), ("6", "7"))),
            Group("2 · Prompt", "text", (("4",), ("5",)))),
        col(Group("3 · H3 sampling: what the search runs", "sampling",
                  (("8", "9"), ("10", "11"), ("12",))),
            Group("4 · Verifiers", "verifiers", (("13", "14"), ("15", "16", "17")))),
        col(Group("5 · Aggregation: ARW", "aggregation", (("18", "verifiers_note"),)),
            Group(f"6 · Search: {search}", "search", (("19", "search_note"),)),
            Group("7 · The winner, decoded and saved", "output", (("20", "21"), ("22", "23"))))),
        "notes": {"verifiers_note": (280, PAPER_VERIFIERS),
                  "search_note": (280, search_note + H3_SAMPLING)}}


def javisdit(search: str, search_note: str) -> dict:
    """JavisDiT v0.1 as the paper runs it, searched by the bridge."""
    return {"details": JAVISDIT_FILES, "layout": row(
        col(Group("1 · Models", "model", (("about",), ("1", "2"))),
            Group("2 · Prompt and clip", "text", (("3",), ("4", "5")))),
        col(Group("3 · JavisDiT sampling: what the search runs", "sampling",
                  (("6", "7"), ("8", "sampling_note"))),
            Group("4 · Verifiers", "verifiers", (("9", "10"), ("11", "12")))),
        col(Group("5 · Aggregation: ARW", "aggregation", (("13", "verifiers_note"),)),
            Group(f"6 · Search: {search}", "search", (("14", "search_note"),)),
            Group("7 · The winner, saved", "output", (("15", "16"),)))),
        "notes": {"sampling_note": (240, JAVISDIT_SAMPLING), "verifiers_note": (280, PAPER_VERIFIERS),
                  "search_note": (280, search_note)}}


TEMPLATES = {
    "toyav_best_of_n": Template(
        "ToyAV · Best-of-N", "No weights",
        "Start here. The embedded ToyAV world (a coloured object bouncing, a sound at each impact) "
        "searched by Best-of-N with two weight-free verifiers under ARW: nothing to download, "
        "press Run. The search node shows the winner and saves it in output/AVITS/.",
        **toyav("best_of_n", (("2",), ("3",), ("4",)))),
    "toyav_evosearch": Template(
        "ToyAV · EvoSearch", "No weights",
        "EvoSearch on ToyAV: evolves the initial noise and an intermediate state instead of "
        "drawing independent seeds. Weight-free verifiers under ARW; nothing to download.",
        **toyav("evosearch", (("2",), ("3",), ("4",)))),
    "toyav_pruned_best_of_n": Template(
        "ToyAV · Pruned Best-of-N", "No weights",
        "Best-of-N that stops losing candidates early, scored on their intermediate clean "
        "estimates. Weight-free verifiers under ARW; nothing to download.",
        **toyav("pruned", (("2",), ("3",), ("4",)),
                "### Verifiers and ARW\nThe final verifiers also read the intermediate "
                "predictions, ranked with ARW's current scales; those scores never enter its "
                "history. A cheaper proxy set can go on the optional proxy_verifiers input.")),
    "toyav_draft_then_commit": Template(
        "ToyAV · Draft, then commit", "No weights",
        "Ten cheap 8-step drafts of ToyAV; the best three run again in full (30 steps), so the "
        "full sampler runs 3 times, not 10. Weight-free verifiers under ARW; nothing to download.",
        **toyav("draft", (("2",), ("3",), ("4",)), generators=("1", "9"))),
    "toyav_evosearch_javisscore": Template(
        "ToyAV · EvoSearch + JavisScore (needs ImageBind)", "Needs ImageBind",
        f"EvoSearch on ToyAV with the paper's neural sync verifier, JavisScore, which reads ImageBind. "
        f"{IMAGEBIND}.",
        **toyav("evosearch", (("2",), ("8",), ("3",), ("4",)),
                "### Verifiers and ARW\n**JavisScore needs ImageBind** (see the top left). It "
                "compares every frame of each 2 s window with that window's sound (the worst 40 % "
                "count). Paired with a text verifier under ARW, as the paper pairs it with "
                "VideoReward-TA.")),
    "ltx2_best_of_n_arw": Template(
        "LTX-2 · Best-of-N", "Needs LTX-2",
        "ComfyUI's standard LTX-2 text-to-audio-video graph (distilled) with Best-of-N in place "
        "of SamplerCustomAdvanced: N seeds, each exactly what SamplerCustomAdvanced gives for it, "
        "scored by VideoReward-TA + JavisScore under ARW; the winner decoded and saved. Needs "
        "LTX-2, Gemma 3, VideoReward and ImageBind.",
        **ltx2("Best-of-N", SEARCH_NOTES["best_of_n"] + "\n\nFor a two-stage graph put the "
               "search in stage 1 and send its latent to the upsampler and stage 2.")),
    "ltx2_evosearch_arw": Template(
        "LTX-2 · EvoSearch", "Needs LTX-2",
        "LTX-2's distilled graph searched by EvoSearch: the initial noise and the states after 4 "
        "of the 8 steps evolve, mutated in the model's own noise scaling. Needs LTX-2, Gemma 3, "
        "VideoReward and ImageBind.",
        **ltx2("EvoSearch", "### EvoSearch on LTX-2\nEvolves the initial noise (step 0) and the "
               "states after 4 of the 8 distilled steps: elites are kept, tournament winners "
               "mutated in the model's own noise scaling (guide frames never noised). 4 + 3 + 3 "
               "candidates; unmutated elites are never sampled again.")),
    "ltx2_pruned_best_of_n_arw": Template(
        "LTX-2 · Pruned Best-of-N", "Needs LTX-2",
        "Best-of-10 on LTX-2 that drops losing candidates after 3 and 5 of the 8 distilled steps, "
        "scored on the sampler's own clean-sample prediction. Needs LTX-2, Gemma 3, VideoReward "
        "and ImageBind.",
        **ltx2("Pruned Best-of-N", "### Pruned Best-of-N on LTX-2\nAfter 3 of the 8 distilled "
               "steps each candidate's predicted clean sample is decoded and scored and the "
               "better half goes on; after step 5 half of those. Survivors finish exactly as in "
               "Best-of-N; the report lists each candidate's pruned_at step and the compute "
               "saved.")),
    "ltx2_draft_then_commit_arw": Template(
        "LTX-2 · Draft, then commit", "Needs LTX-2",
        "Ten 4-step drafts of LTX-2 (the same distilled model on a shorter schedule), the best "
        "three run again in full. Needs LTX-2, Gemma 3, VideoReward and ImageBind.",
        **ltx2("Draft, then commit", SEARCH_NOTES["draft"],
               (("7", "8"), ("9", "10", "12"), ("11", "26"), ("13", "27")))),
    "ltx25_two_stage_best_of_n_arw": Template(
        "LTX-2.5 · Two-stage Best-of-N", "Needs LTX-2.5 (gated)",
        "LTX-2.5's two-stage distilled graph with Best-of-8 in stage 1, scored through the TAE "
        "decoder; only the winner goes through the upsampler, stage 2 and the full decoder. Needs "
        "LTX-2.5 (gated), its upscaler, taeltx_2, VideoReward and ImageBind.",
        details=LTX25_FILES, layout=row(
            col(Group("1 · Models", "model", (("about",), ("1", "2"), ("3",))),
                Group("2 · Prompt", "text", (("4",), ("5",), ("6",)))),
            col(row(Group("3 · Stage 1 sampling (half resolution)", "sampling",
                          (("7", "8"), ("9", "10"), ("11", "12"), ("14", "13"))),
                    col(Group("4 · Verifiers", "verifiers", (("15", "16"), ("17", "18", "19"))),
                        Group("5 · Search stage 1: Best-of-N under ARW", "search", (("20", "21"),)))),
                Group("6 · Stage 2: the winner only", "output",
                      (("22", "23", "24", "25", "26", "27"), ("28", "29", "30", "31", "32", "33")))))),
    "h3_best_of_n_arw": Template(
        "MiniMax H3 · Best-of-N", "Needs MiniMax H3",
        "MiniMax H3's text-to-audio-video graph with Best-of-N in place of SamplerCustomAdvanced: "
        "4 seeds scored by VideoReward-TA + JavisScore under ARW, the winner decoded and saved. "
        "Needs H3 (check MiniMax's terms), VideoReward and ImageBind.",
        **h3("Best-of-N", SEARCH_NOTES["best_of_n"])),
    "h3_evosearch_arw": Template(
        "MiniMax H3 · EvoSearch", "Needs MiniMax H3",
        "EvoSearch on MiniMax H3: the initial noise and the states after 30 % of the steps "
        "evolve, each stream mutated at its own noise level. Needs H3 (check MiniMax's terms), "
        "VideoReward and ImageBind.",
        **h3("EvoSearch", "### EvoSearch on H3\nEvolves the initial noise and the states after 30 % "
             "of the steps (0, 0.3: step 6 of 20), populations 4/4/4, 1 elite; intermediate "
             "states are mutated variance-preserving, each stream at its own sigma.")),
    "h3_pruned_best_of_n_arw": Template(
        "MiniMax H3 · Pruned Best-of-N", "Needs MiniMax H3",
        "Best-of-8 on MiniMax H3 that drops losing candidates after 20 % and 33 % of the steps, "
        "scored on each stream's own clean estimate. Needs H3 (check MiniMax's terms), "
        "VideoReward and ImageBind.",
        **h3("Pruned Best-of-N", "### Pruned Best-of-N on H3\n8 candidates; after 20 % of the "
             "steps each one's predicted clean sample (each stream's own) is decoded and scored "
             "and half go on, after 33 % 40 % of those. Survivors finish exactly as in "
             "Best-of-N; intermediate scores never enter the ARW state.")),
    "javisdit_best_of_n_arw": Template(
        "JavisDiT · Best-of-N (the paper)", "Needs JavisDiT",
        "The paper's first search on JavisDiT v0.1: 5 candidates scored by VideoReward-TA + "
        "JavisScore under ARW, the winner saved as mp4. Needs JavisDiT, its prior, the OpenSora "
        "VAE, AudioLDM2 (CC BY-NC-SA), T5-XXL, VideoReward and ImageBind.",
        **javisdit("Best-of-N", SEARCH_NOTES["best_of_n"])),
    "javisdit_evosearch_arw": Template(
        "JavisDiT · EvoSearch (the paper)", "Needs JavisDiT",
        "The paper's EvoSearch on JavisDiT v0.1 (evolution at steps 0 and 10 of 30, populations "
        "5/5/5, 2 elites). Needs JavisDiT, its prior, the OpenSora VAE, AudioLDM2 (CC BY-NC-SA), "
        "T5-XXL, VideoReward and ImageBind.",
        **javisdit("EvoSearch", "### EvoSearch on JavisDiT\nThe reference config: evolution at "
                   "steps 0 and 10 of 30, populations 5/5/5, 2 elites, mutation rate 0.2, "
                   "tournament 0.5. Unmutated elites are never denoised again: 300 denoiser "
                   "calls for 11 distinct candidates, where the reference spends 400 for 15.")),
    "mmdisco_evosearch_arw": Template(
        "MMDisCo · EvoSearch (the paper)", "Needs MMDisCo",
        "The paper's MMDisCo setting: VideoCrafter2 and Auffusion kept in sync by the coupling "
        "discriminator, searched by EvoSearch under VideoReward-TA + JavisScore. Needs "
        "VideoCrafter2, Auffusion (CC BY-NC-SA), the coupling, VideoReward and ImageBind.",
        details=MMDISCO_FILES, layout=row(
            col(Group("1 · Model: MMDisCo", "model", (("about",), ("1",), ("2",)))),
            col(Group("2 · Verifiers", "verifiers", (("3", "4"), ("5", "6", "7"))),
                Group("3 · Aggregation: ARW", "aggregation", (("8", "verifiers_note"),))),
            col(Group("4 · Search: EvoSearch", "search", (("9", "search_note"),)),
                Group("5 · The winner, saved", "output", (("10", "11"),)))),
        notes={"verifiers_note": (280, PAPER_VERIFIERS), "search_note": (280, (
            "### EvoSearch on MMDisCo\n50 DDPM steps, evolution at steps 0 and 20, populations "
            "10/10/10. Every step runs VideoCrafter2 and Auffusion with CFG 8 and adds the "
            "coupling discriminator's gradient (video x 8, audio x 1). The sampler is ancestral: "
            "every candidate's noise comes from its own seed, and elites get a new rollout."))}),
}


def about(order: int, template: Template) -> str:
    text = f"## {order}. {template.title}\n**{template.needs}.** {template.description}"
    return f"{text}\n\n{template.details}" if template.details else text


# --- in the page ----------------------------------------------------------------------------
FRAMES = "const frames = async (n) => { for (let i = 0; i < n; i++) await new Promise((d) => requestAnimationFrame(d)); };"

LOAD = """async ([api, sizes, minWidth]) => {
  %s
  const app = window.app, LG = window.LiteGraph;
  // the frontend keeps a widget's value per graph and node id, and an API graph always loads into
  // the same graph: without this, an input the API graph leaves out keeps the last template's value
  const pinia = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia;
  app.graph.clear();
  pinia._s.get('widgetValue').clearGraph(app.graph.id);
  await app.loadApiJson(api, 'workflow.json');
  await frames(10);
  const measured = {}, badged = {}, ctx = app.canvas.ctx;
  ctx.font = app.canvas.title_text_font;
  for (const node of app.graph.nodes) {
    for (const w of node.widgets || []) if (w.name === 'control_after_generate') w.value = 'fixed';
    // the frontend cuts a title short where the node is less than its text + 80 wide
    const least = node.computeSize();
    least[0] = Math.max(least[0], ctx.measureText(node.title).width + 80);
    // a node without widgets keeps the size the frontend gives it (it restores no less)
    const [w, h] = sizes[node.type] || (node.widgets?.length ? [minWidth, 0] : node.size);
    node.size = [Math.max(w, least[0]), Math.max(h, least[1])];
    measured[String(node.id)] = [node.size[0], node.size[1]];
    // a badge (the pack's name, [BETA]) is drawn above the node's title
    badged[String(node.id)] = (node.badges || []).some((b) => (typeof b === 'function' ? b() : b).text);
  }
  return {sizes: measured, badged, groupTitle: new LG.LGraphGroup('x').titleHeight};
}""" % FRAMES

# Notes are measured at scale 1, one at a time in view: their text decides their height.
NOTES = """async (notes) => {
  %s
  const app = window.app;
  app.canvas.ds.scale = 1;
  app.canvas.ds.offset = [0, 0];
  const ids = {};
  for (const [key, width, text] of notes) {
    const note = window.LiteGraph.createNode('MarkdownNote');
    note.title = 'Read me';
    note.pos = [100, 100];
    note.size = [width, 100];
    app.graph.add(note);
    note.widgets[0].value = text;
    app.canvas.setDirty(true, true);
    await frames(4);
    note.size = [width, note.widgets[0].element.querySelector('.tiptap').scrollHeight + 40];
    note.pos = [-10000, -10000];
    ids[key] = String(note.id);
  }
  // by now the verifier sets have grown their empty slot: no node smaller than it needs
  const sizes = {};
  for (const node of app.graph.nodes) {
    const least = node.computeSize();
    node.size = [Math.max(node.size[0], least[0]), Math.max(node.size[1], least[1])];
    sizes[String(node.id)] = [node.size[0], node.size[1]];
  }
  return {ids, sizes};
}""" % FRAMES

PLACE = """([positions, groups, models, extra]) => {
  const app = window.app, LG = window.LiteGraph;
  for (const group of [...app.graph.groups]) app.graph.remove(group);
  for (const node of app.graph.nodes) {
    const id = String(node.id);
    node.pos = positions[id];
    if (models[id]) node.properties.models = models[id];
  }
  for (const [title, rect, color] of groups) {
    const group = new LG.LGraphGroup(title);
    group.pos = [rect[0], rect[1]];
    group.size = [rect[2], rect[3]];
    group.color = color;
    app.graph.add(group);
  }
  const data = app.graph.serialize();
  data.extra = {...data.extra, avits: extra};
  return data;
}"""

# A saved graph as the frontend opens it: the size of every node (an Autogrow input's empty slot
# makes the verifier set taller than it was when built).
REOPEN = """async (workflow) => {
  %s
  await window.app.loadGraphData(workflow);
  await frames(6);
  const sizes = {};
  for (const node of window.app.graph.nodes) sizes[String(node.id)] = [node.size[0], node.size[1]];
  return sizes;
}""" % FRAMES

SHOW = """async (workflow) => {
  %s
  const app = window.app;
  await app.loadGraphData(workflow);
  await frames(6);
  app.canvas.fitViewToSelectionAnimated({duration: 1});
  await new Promise((done) => setTimeout(done, 200));
  await frames(6);
  // where the graph is on the screen, for the thumbnail
  const rects = app.graph.groups.map((group) => group.boundingRect);
  const ds = app.canvas.ds;
  const [x0, y0] = ds.convertOffsetToCanvas([Math.min(...rects.map((r) => r[0])), Math.min(...rects.map((r) => r[1]))]);
  const [x1, y1] = ds.convertOffsetToCanvas([Math.max(...rects.map((r) => r[0] + r[2])),
                                             Math.max(...rects.map((r) => r[1] + r[3]))]);
  return {scale: ds.scale, low_quality: app.canvas.low_quality, rect: [x0, y0, x1, y1]};
}""" % FRAMES

# Screenshots show the graph alone: no minimap, canvas info or errors overlay (the test server
# has none of the big models).
SCREENSHOT_SETTINGS = {"Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False,
                       "Comfy.RightSidePanel.ShowErrorsTab": False}


def groups_in(item) -> list[Group]:
    return [item] if isinstance(item, Group) else [g for i in item.items for g in groups_in(i)]


def layout(template: Template, measured: dict) -> tuple[dict[str, list[float]], list]:
    """Every node's position and the groups' [title, [x, y, w, h], colour]: a group's rows
    stacked, the nodes of a row side by side, with room for a badge above a row that holds a
    node with one."""
    sizes, ids = measured["sizes"], measured["notes"]
    positions, groups = {}, []

    def rows_of(group: Group) -> list[list[str]]:
        return [[ids.get(key, key) for key in keys] for keys in group.rows]

    def row_top(nodes: list[str]) -> float:
        return TITLE + (BADGE if any(measured["badged"][i] for i in nodes) else 0)

    def size(item) -> tuple[float, float]:
        if isinstance(item, Group):
            rows = rows_of(item)
            return (max(sum(sizes[i][0] for i in r) + GAP * (len(r) - 1) for r in rows) + 2 * PAD,
                    measured["groupTitle"] + PAD
                    + sum(row_top(r) + max(sizes[i][1] for i in r) + GAP / 2 for r in rows))
        parts = [size(i) for i in item.items]
        if isinstance(item, Column):
            return max(w for w, _ in parts), sum(h for _, h in parts) + GROUP_GAP * (len(parts) - 1)
        return sum(w for w, _ in parts) + COLUMN_GAP * (len(parts) - 1), max(h for _, h in parts)

    def place(item, x: float, y: float, width: float, height: float) -> None:
        if isinstance(item, Group):
            groups.append([item.title, [x, y, width, height], COLORS[item.role]])
            y += measured["groupTitle"]
            for r in rows_of(item):
                left, top = x + PAD, y + row_top(r)
                for i in r:
                    positions[i] = [left, top]
                    left += sizes[i][0] + GAP
                y = top + max(sizes[i][1] for i in r) + GAP / 2
            return
        end = (x + width, y + height)
        for k, child in enumerate(item.items):
            w, h = size(child)
            last = k == len(item.items) - 1
            if isinstance(item, Column):
                place(child, x, y, width, end[1] - y if last else h)
                y += h + GROUP_GAP
            else:
                place(child, x, y, end[0] - x if last else w, height)
                x += w + COLUMN_GAP

    place(template.layout, 0, 0, *size(template.layout))
    return positions, groups


def fill(template: Template, key: str, sizes: dict[str, list[float]]) -> float:
    """The width of a note alone on its row: the widest row of nodes in its group."""
    group = next(g for g in groups_in(template.layout) if (key,) in g.rows)
    return max(sum(sizes[i][0] for i in row) + GAP * (len(row) - 1)
               for row in group.rows if all(i in sizes for i in row))


def build(page, name: str, order: int, template: Template) -> dict:
    api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
    measured = page.evaluate(LOAD, [api, SIZES, MIN_WIDTH])
    notes = {"about": (0, about(order, template)), **template.notes}
    placed = page.evaluate(NOTES, [[k, w or fill(template, k, measured["sizes"]), t]
                                   for k, (w, t) in notes.items()])
    measured["notes"], measured["sizes"] = placed["ids"], placed["sizes"]
    measured["badged"].update({i: False for i in placed["ids"].values()})
    extra = {"order": order, "title": template.title, "needs": template.needs,
             "description": template.description}
    text_of = {measured["notes"][k]: t for k, (_, t) in notes.items()}
    for _ in range(3):  # laid out again until the frontend opens it at the sizes it was laid out with
        positions, groups = layout(template, measured)
        ui = page.evaluate(PLACE, [positions, groups, models_of(api), extra])
        # a note's text set from script is not serialised: it goes in here
        for node in ui["nodes"]:
            if str(node["id"]) in text_of:
                node["widgets_values"] = [text_of[str(node["id"])]]
        opened = page.evaluate(REOPEN, ui)
        grown = {i: size for i, size in opened.items()
                 if size[0] > measured["sizes"][i][0] + 0.5 or size[1] > measured["sizes"][i][1] + 0.5}
        if not grown:
            return ui
        measured["sizes"].update(grown)
    raise RuntimeError(f"{name}: the frontend keeps growing nodes {sorted(grown)} when opening it")


THUMBNAIL = """<html><body style="margin:0;width:512px;height:512px;background:#202020;
font-family:sans-serif;color:#eee;overflow:hidden">
<div style="padding:20px 24px 0 24px;height:150px;box-sizing:border-box">
<div style="font-size:19px;color:#aaa">%(place)s</div>
<div style="font-size:30px;font-weight:bold;line-height:1.15;margin:4px 0 10px 0">%(title)s</div>
<span style="font-size:18px;padding:3px 12px;border-radius:12px;background:%(colour)s;
color:#111;font-weight:bold">%(needs)s</span></div>
<img src="data:image/png;base64,%(image)s"
 style="width:496px;height:346px;margin:0 8px;object-fit:contain">
</body></html>"""


def thumbnail(page, shot: bytes, rect: list[float], order: int, template: Template) -> bytes:
    """The template browser's card (square): its place in the order, the title, what it needs,
    and the graph cut out of the fit-view screenshot."""
    crop = io.BytesIO()
    x0, y0, x1, y1 = rect
    Image.open(io.BytesIO(shot)).crop((int(x0) - 8, int(y0) - 8, int(x1) + 8, int(y1) + 8)).save(crop, "PNG")
    card = page.context.new_page()
    try:
        card.set_viewport_size({"width": 512, "height": 512})
        card.set_content(THUMBNAIL % {
            "place": f"{order} of {len(TEMPLATES)}" + (" · start here" if order == 1 else ""),
            "title": template.title.split(" (")[0], "needs": template.needs,
            "image": base64.b64encode(crop.getvalue()).decode(),
            "colour": "#7c7" if template.needs == "No weights" else "#e9a440"})
        return card.screenshot(type="jpeg", quality=80)
    finally:
        card.close()


def small_png(shot: bytes) -> bytes:
    """The screenshot in 256 colours: the same picture at a fraction of the size."""
    out = io.BytesIO()
    Image.open(io.BytesIO(shot)).convert("RGB").quantize(256).save(out, "PNG", optimize=True)
    return out.getvalue()


def index(scales: dict[str, float]) -> str:
    """docs/templates/README.md: the templates in order, what each needs, its screenshot."""
    lines = ["# The templates, in the order to open them", "",
             "Generated by `scripts/build_workflows.py` (titles, order and descriptions live "
             "there). ComfyUI 0.30.0 lists a pack's templates by file name, in directory order, "
             "and its frontend shows the file name as title: the number, title and what each "
             "needs are on its thumbnail (`workflows/<name>.jpg`) and in the note at the top left "
             "of its canvas. Each screenshot is the frontend's fit view in a 1600 x 1000 window.", ""]
    for order, (name, template) in enumerate(TEMPLATES.items(), 1):
        lines += [f"## {order}. {template.title}", "",
                  f"`workflows/{name}.json` · **{template.needs}** · fit view at "
                  f"{scales[name]:.0%}", "", template.description, "",
                  f"![{template.title}]({name}.png)", ""]
    return "\n".join(lines)


def main() -> None:
    server = ComfyServer(Path(tempfile.mkdtemp(prefix="avits-build-")))
    server.start()
    docs = REPO / "docs" / "templates"
    docs.mkdir(parents=True, exist_ok=True)
    scales = {}
    try:
        for key, value in SCREENSHOT_SETTINGS.items():
            server.post(f"/settings/{key}", value)
        with open_frontend(server, *VIEWPORT) as page:
            for order, (name, template) in enumerate(TEMPLATES.items(), 1):
                ui = build(page, name, order, template)
                path = REPO / "workflows" / f"{name}.json"
                if path.exists():  # the workflow keeps its id: a rebuild changes what changed
                    ui["id"] = json.loads(path.read_text()).get("id", ui["id"])
                path.write_text(json.dumps(ui, indent=1) + "\n")
                shown = page.evaluate(SHOW, ui)
                shot = page.screenshot()
                (docs / f"{name}.png").write_bytes(small_png(shot))
                (REPO / "workflows" / f"{name}.jpg").write_bytes(thumbnail(page, shot, shown["rect"], order, template))
                scales[name] = shown["scale"]
                print(f"{order:2}. workflows/{name}.json: fit view {shown['scale']:.0%}"
                      f"{' (too small to read)' if shown['low_quality'] else ''}")
        (docs / "README.md").write_text(index(scales))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
