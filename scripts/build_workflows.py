"""Regenerates the UI-format workflows (workflows/*.json) from their API-format twins
(workflows/api/*.json) through the real ComfyUI frontend: it loads each API graph, places the
nodes on a grid, adds notes that explain the knobs, and saves what the frontend serialises, so
the UI files always match the node definitions. Run after changing a node or an API workflow:

    .venv/bin/python scripts/build_workflows.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from comfyctl import REPO, ComfyServer  # noqa: E402
from browser import open_frontend  # noqa: E402

# Node positions by API id. ToyAV: generator and verifiers on the left, aggregation below,
# search right. LTX-2: ComfyUI's standard graph left to right, our search in place of
# SamplerCustomAdvanced, the verifiers under it, decoding and saving at the right.
TOYAV = {"1": (40, 60), "2": (40, 460), "3": (40, 580), "4": (380, 480), "5": (40, 720),
         "7": (380, 760), "6": (760, 60), "8": (40, 1000)}
LTX2 = {"1": (40, 60), "2": (40, 260), "3": (40, 400), "4": (420, 60), "5": (420, 320),
        "6": (820, 60), "7": (820, 300), "8": (820, 500), "9": (1180, 400), "10": (1180, 60),
        "11": (1180, 200), "12": (1180, 560), "13": (1560, 60), "14": (1180, 820), "15": (1560, 820),
        "16": (1180, 1000), "17": (1560, 1000), "18": (1940, 900), "19": (1940, 1080),
        "20": (1940, 60), "21": (2360, 60), "22": (2360, 240), "23": (2360, 400),
        "24": (2740, 60), "25": (3100, 60)}
# JavisDiT: loaders and conditioning left, the sampling graph in the middle, verifiers under
# it, the search and saving right.
JAVISDIT = {"1": (40, 60), "2": (40, 380), "3": (420, 60), "4": (820, 60), "5": (820, 340),
            "6": (820, 480), "7": (1200, 60), "8": (1560, 60), "9": (820, 620), "10": (1200, 620),
            "11": (1200, 780), "12": (1560, 700), "13": (1560, 880), "14": (1960, 60),
            "15": (2380, 60), "16": (2380, 240)}
MMDISCO = {"1": (40, 60), "2": (420, 60), "3": (40, 420), "4": (420, 420), "5": (40, 580),
           "6": (420, 580), "7": (800, 480), "8": (800, 640), "9": (1180, 60), "10": (1580, 60),
           "11": (1580, 240)}
# MiniMax H3: loaders, text and latent left, the guider and generator in the middle, verifiers
# under them, the search and the decoders right.
H3 = {"1": (40, 60), "2": (40, 200), "3": (40, 340), "4": (420, 60), "5": (420, 300),
      "6": (40, 480), "7": (40, 600), "8": (40, 720), "9": (820, 60), "10": (820, 180),
      "11": (820, 380), "12": (1180, 60), "13": (820, 620), "14": (1180, 620), "15": (820, 780),
      "16": (1180, 780), "17": (1560, 700), "18": (1560, 860), "19": (1560, 60), "20": (1960, 60),
      "21": (1960, 200), "22": (2340, 60), "23": (2700, 60)}
# LTX-2.5 two-stage: stage 1 (the search) on the upper rows, stage 2 (the winner only) right.
LTX25 = {"1": (40, 60), "2": (40, 260), "3": (40, 400), "4": (420, 60), "5": (420, 320),
         "6": (820, 60), "7": (820, 300), "8": (820, 500), "9": (1180, 400), "10": (1180, 60),
         "11": (1180, 200), "12": (1180, 560), "13": (1180, 760), "14": (1560, 60),
         "15": (1180, 960), "16": (1560, 960), "17": (1180, 1120), "18": (1560, 1120),
         "19": (1940, 1000), "20": (1940, 1180), "21": (1940, 60), "22": (2360, 60),
         "23": (2360, 240), "24": (2740, 60), "25": (3100, 60), "26": (3100, 240),
         "27": (3100, 380), "28": (3460, 60), "29": (3840, 60), "30": (4200, 60), "31": (4200, 300),
         "32": (4560, 60), "33": (4920, 60)}
LAYOUTS = {"toyav_best_of_n": TOYAV, "toyav_evosearch": TOYAV, "toyav_evosearch_javisscore": TOYAV,
           "ltx2_best_of_n_arw": LTX2, "ltx2_evosearch_arw": LTX2, "ltx2_pruned_best_of_n_arw": LTX2,
           "toyav_pruned_best_of_n": TOYAV, "mmdisco_evosearch_arw": MMDISCO,
           "javisdit_best_of_n_arw": JAVISDIT, "javisdit_evosearch_arw": JAVISDIT,
           "h3_best_of_n_arw": H3, "h3_evosearch_arw": H3, "h3_pruned_best_of_n_arw": H3,
           "ltx25_two_stage_best_of_n_arw": LTX25}

LTX2_FILES = (
    "Model files\n\nmodels/checkpoints/ltx-2-19b-distilled.safetensors (LTX-2 with its video "
    "VAE, audio VAE and vocoder; https://huggingface.co/Lightricks/LTX-2)\n"
    "models/text_encoders/gemma_3_12B_it.safetensors (the Gemma 3 text encoder)\n"
    "models/videoreward/VideoReward/ (https://huggingface.co/KwaiVGI/VideoReward)\n"
    "models/imagebind/imagebind_huge.pth (https://dl.fbaipublicfiles.com/imagebind/"
    "imagebind_huge.pth, CC BY-NC-SA 4.0; pip install --no-deps imagebind-unofficial==0.1.1 "
    "ftfy regex iopath einops timm)\n\nSettings\nDistilled model (this graph): the 8 manual "
    "sigmas, euler, CFG 1.\nFull model: LTXVScheduler (20 steps, max_shift 2.05, base_shift "
    "0.95) in place of the manual sigmas, CFG about 4 (or a multimodal guider: audio ~7, video ~3).")
LTX2_VERIFIERS = (
    "Verifiers\n\nVideoReward-TA (does the video show the prompt?) plus JavisScore (does the "
    "sound move with the picture?), combined by ARW: the study's best pair. Either alone gets "
    "'hacked'. The ARW state 'ltx2' keeps learning across prompts; a failed prompt leaves it "
    "unchanged.")

JAVISDIT_FILES = (
    "Model files (JavisDiT v0.1)\n\n"
    "models/javisdit/JavisDiT-v0.1-jav-240p4s/ (config.json + model.safetensors; "
    "https://huggingface.co/JavisVerse/JavisDiT-v0.1-jav-240p4s)\n"
    "models/javisdit/JavisDiT-v0.1-prior/ (https://huggingface.co/JavisVerse/JavisDiT-v0.1-prior)\n"
    "models/javisdit/OpenSora-VAE-v1.2/ (https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2)\n"
    "models/javisdit/audioldm2/ with its vae/ and vocoder/ subfolders "
    "(https://huggingface.co/cvssp/audioldm2, CC BY-NC-SA 4.0)\n"
    "models/text_encoders/t5xxl_fp16.safetensors (T5 v1.1 XXL, the file Flux uses: "
    "https://huggingface.co/comfyanonymous/flux_text_encoders)\n"
    "models/imagebind/imagebind_huge.pth (the prior's text features and JavisScore; "
    "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth, CC BY-NC-SA 4.0)\n"
    "models/videoreward/VideoReward/ (https://huggingface.co/KwaiVGI/VideoReward)\n\n"
    "pip install --no-deps diffusers==0.42.1 imagebind-unofficial==0.1.1 ftfy regex iopath einops timm")
JAVISDIT_VERIFIERS = (
    "Verifiers\n\nVideoReward-TA (does the video show the prompt?) plus JavisScore (does the "
    "sound move with the picture?), combined by ARW: the paper's setting on JavisDiT. The ARW "
    "state 'javisdit' keeps learning across prompts; a failed prompt leaves it unchanged.")
JAVISDIT_SAMPLING = (
    "The reference's sampling\n\n4 s at 240p 9:16 (102 frames at 24 fps, 4.25 s of 16 kHz "
    "sound), 30 Euler steps on the exact shifted sigmas of AVITS JavisDiT Scheduler (shift "
    "3.42 here), CFG 7 against the model's learned null caption and prior. Each candidate's "
    "prior sample is drawn from its seed, so candidate k is SamplerCustomAdvanced with seed + k."
    "\n\nmax_batch on the generator: candidates through the DiT at once (memory).")

MMDISCO_FILES = (
    "Model files (MMDisCo: Auffusion + VideoCrafter2)\n\n"
    "models/mmdisco/videocrafter2/model.ckpt (base_512_v2 of "
    "https://huggingface.co/VideoCrafter/VideoCrafter2; if it does not load with weights_only, "
    "run scripts/convert_videocrafter2.py once and keep model.safetensors beside it)\n"
    "models/mmdisco/auffusion-full/ (the diffusers folder https://huggingface.co/auffusion/"
    "auffusion-full, CC BY-NC-SA 4.0)\n"
    "models/mmdisco/auffusion_videocrafter2_vggsound.pt (the coupling: "
    "https://huggingface.co/AkioHayakawa/MMDisCo)\n"
    "models/videoreward/VideoReward/ and models/imagebind/imagebind_huge.pth for the verifiers\n\n"
    "pip install --no-deps diffusers==0.42.1 open_clip_torch==3.3.0 ftfy regex timm")

H3_FILES = (
    "Model files (MiniMax H3, ComfyUI core)\n\n"
    "models/diffusion_models/minimax_h3_bf16.safetensors (the H3 DiT)\n"
    "models/text_encoders/minimax_h3_qwen3vl_32b.safetensors (Qwen3-VL-32B, CLIPLoader type "
    "minimax)\nmodels/vae/minimax_h3_video_vae.safetensors and "
    "models/vae/minimax_h3_audio_vae.safetensors (32 kHz stereo)\n"
    "models/videoreward/VideoReward/ and models/imagebind/imagebind_huge.pth for the verifiers\n"
    "Rename the loaders' files to yours.\n\nLicence: H3's weights carry MiniMax's own terms "
    "(a third party reads them as granting no rights in the EU, UK, South Korea or USA without "
    "MiniMax's authorisation): check them before use. ImageBind (JavisScore) is CC BY-NC.")
H3_SAMPLING = (
    "How H3 is searched\n\nH3 takes one sample per model call: the generator runs the "
    "candidates one after the other whatever max_batch says. Its audio runs on its own "
    "schedule (MiniMaxH3SigmaShift: video 12, audio 3): the search mutates each stream with "
    "its own noise level and scores each stream's own clean estimate. 20 steps, CFG 5 for "
    "the full model (a turbo LoRA at 8 or 4 steps with CFG 1); steps written as fractions "
    "(0.3, 0.2:0.5) fit any step count.")

LTX25_FILES = (
    "Model files (LTX-2.5)\n\nmodels/checkpoints/ltx-2.5-distilled.safetensors (the "
    "distilled model with its video VAE, audio VAE and vocoder)\n"
    "models/text_encoders/gemma_3_12B_it.safetensors\n"
    "models/latent_upscale_models/ltx-2.5-spatial-upscaler-x2.safetensors\n"
    "models/vae_approx/taeltx_2.safetensors (the TAE decoder core uses for previews)\n"
    "models/videoreward/VideoReward/ and models/imagebind/imagebind_huge.pth (CC BY-NC) for "
    "the verifiers\nRename the loaders' files to yours.")

NOTES = {
    "h3_best_of_n_arw": [
        ((1960, 300), (360, 300),
         "Best-of-N on MiniMax H3\n\nH3's text-to-audio-video graph with AVITS Best-of-N in "
         "place of SamplerCustomAdvanced: 4 seeds, each exactly what SamplerCustomAdvanced gives "
         "for it, scored by VideoReward-TA + JavisScore under ARW; the winner decoded and saved."),
        ((40, 880), (740, 360), H3_FILES), ((820, 1000), (360, 340), H3_SAMPLING)],
    "h3_evosearch_arw": [
        ((1960, 300), (360, 300),
         "EvoSearch on MiniMax H3\n\nEvolves the initial noise and the states after 30 % of "
         "the steps (0, 0.3: step 6 of 20), populations 4/4/4, 1 elite; intermediate states are "
         "mutated variance-preserving, each stream at its own sigma."),
        ((40, 880), (740, 360), H3_FILES), ((820, 1000), (360, 340), H3_SAMPLING)],
    "h3_pruned_best_of_n_arw": [
        ((1960, 300), (360, 320),
         "Pruned Best-of-N on MiniMax H3\n\n8 candidates; after 20 % of the steps each one's "
         "predicted clean sample (each stream's own) is decoded and scored and half go on, after "
         "33 % 40 % of those. Survivors finish exactly as in Best-of-N; intermediate scores "
         "never enter the ARW state."),
        ((40, 880), (740, 360), H3_FILES), ((820, 1000), (360, 340), H3_SAMPLING)],
    "ltx25_two_stage_best_of_n_arw": [
        ((1560, 360), (360, 460),
         "Search stage 1 only\n\nLTX-2.5's shipped two-stage distilled graph: 8 euler_ancestral "
         "steps at half resolution, the x2 latent upsampler, 3 more steps. Best-of-8 runs in "
         "stage 1, every candidate from its own seed, scored through the TAE decoder (the full "
         "decoder takes minutes a clip); only the winner's LATENT goes through the upsampler, "
         "stage 2 and the full decoder, once. Check how well the TAE ranks on your prompts with "
         "scripts/evaluate's compare_decoders."),
        ((40, 620), (700, 360), LTX25_FILES), ((2360, 600), (360, 300), LTX2_VERIFIERS)],

    "mmdisco_evosearch_arw": [
        ((1180, 420), (380, 380),
         "EvoSearch on MMDisCo\n\nThe paper's setting: 50 DDPM steps, evolution at steps 0 "
         "and 20, populations 10/10/10. Every step runs VideoCrafter2 and Auffusion with CFG 8 "
         "and adds the coupling discriminator's gradient (video x 8, audio x 1), so the two "
         "stay in sync. The sampler is ancestral: every candidate's noise comes from its own "
         "seed, and elites get a new rollout. VideoReward-TA + JavisScore under ARW."),
        ((40, 760), (740, 300), MMDISCO_FILES),
    ],
    "javisdit_best_of_n_arw": [
        ((1960, 420), (380, 300),
         "Best-of-N on JavisDiT\n\nThe paper's first search: 5 candidates (seeds 0..4), "
         "each scored by VideoReward-TA and JavisScore, the best by ARW returned as frames, "
         "audio and latent and saved with its report."),
        ((40, 720), (740, 420), JAVISDIT_FILES),
        ((420, 340), (360, 340), JAVISDIT_SAMPLING),
        ((1960, 760), (380, 240), JAVISDIT_VERIFIERS),
    ],
    "javisdit_evosearch_arw": [
        ((1960, 420), (380, 320),
         "EvoSearch on JavisDiT\n\nThe reference config: evolution at steps 0 and 10 of 30, "
         "populations 5/5/5, 2 elites, mutation rate 0.2, tournament 0.5. Unmutated elites are "
         "never denoised again: 300 denoiser calls for 11 distinct candidates, where the "
         "reference spends 400 for 15 (4 of them duplicates)."),
        ((40, 720), (740, 420), JAVISDIT_FILES),
        ((420, 340), (360, 340), JAVISDIT_SAMPLING),
        ((1960, 780), (380, 240), JAVISDIT_VERIFIERS),
    ],
    "toyav_best_of_n": [
        ((1180, 60), (420, 330),
         "Best-of-N\n\nSamples N candidates from seeds seed..seed+N-1 in one batch, scores each "
         "with every verifier, combines the rewards and returns the best frames, audio, latent "
         "and report (also saved as mp4 + report.json + plot.png in output/AVITS/).\n\n"
         "n: candidates (the reference uses 10 for LTX-2). More n costs n x steps denoiser "
         "calls and finds better samples."),
        ((760, 470), (400, 250),
         "Verifiers and aggregation\n\nOne text verifier plus one audio-video sync verifier: "
         "either alone gets 'hacked' (its own metric rises, the other falls).\n\nARW state learns "
         "one scale per verifier from every reward it has seen, across prompts and restarts; "
         "toggle 'reset' to start over. ARW scales shows what it learned."),
    ],
    "toyav_evosearch": [
        ((1180, 60), (440, 400),
         "EvoSearch\n\nEvolves the initial noise and intermediate states. At each evolution step "
         "(0 = the noise, 10 = after 10 of 30 steps) it keeps the 'elites' best states seen there "
         "and fills the rest of the next population with mutated tournament winners.\n\n"
         "population_sizes: the first generation, then one size per evolution step.\n"
         "mutation_rate (beta): noise becomes sqrt(1-beta^2) x + beta eps; intermediate states "
         "get sigma x eps.\n\nThe default (5,5,5; 2 elites) spends 300 denoiser calls for 11 "
         "distinct candidates: unmutated elites are never denoised again."),
        ((760, 470), (400, 250),
         "Verifiers and aggregation\n\nOne text verifier plus one audio-video sync verifier: "
         "either alone gets 'hacked' (its own metric rises, the other falls).\n\nARW state learns "
         "one scale per verifier from every reward it has seen, across prompts and restarts; "
         "toggle 'reset' to start over. ARW scales shows what it learned."),
    ],
    "ltx2_best_of_n_arw": [
        ((1560, 360), (360, 420),
         "Best-of-N on LTX-2\n\nThe standard LTX-2 text-to-audio-video graph with AVITS "
         "Best-of-N in place of SamplerCustomAdvanced: the same checkpoint, conditioning, guider, "
         "sampler and sigmas, N seeds (seed..seed+N-1, each exactly what SamplerCustomAdvanced "
         "gives for that seed), the winner decoded and saved. For a two-stage graph put the "
         "search in stage 1 and send its latent to the upsampler and stage 2.\n\nmax_batch on "
         "the generator: candidates through the model at once (memory)."),
        ((40, 620), (700, 420), LTX2_FILES),
        ((2360, 600), (360, 300), LTX2_VERIFIERS),
    ],
    "ltx2_pruned_best_of_n_arw": [
        ((1560, 360), (360, 440),
         "Pruned Best-of-N on LTX-2\n\nBest-of-10 that stops losing candidates early: after 3 "
         "of the 8 distilled steps the sampler's own prediction of each candidate's clean "
         "sample is decoded and scored, and the better half goes on; after step 5 half of those. "
         "Survivors finish exactly as in Best-of-N. Intermediate scores never enter the ARW "
         "state; the report lists each candidate's pruned_at step and the compute saved."),
        ((40, 620), (700, 420), LTX2_FILES),
        ((2360, 600), (360, 300), LTX2_VERIFIERS),
    ],
    "toyav_pruned_best_of_n": [
        ((1180, 60), (440, 360),
         "Pruned Best-of-N\n\nStarts N candidates and, at each pruning step of the schedule "
         "(step:fraction kept), scores every survivor's predicted clean sample and keeps the "
         "best fraction; survivors finish exactly as in Best-of-N, at a fraction of its "
         "compute (the report counts the NFE saved). The continuous ToyAV world (attributes "
         "that vary smoothly with the noise) is where early scores predict final ones. "
         "Measured: docs/claims.md."),
        ((760, 470), (400, 250),
         "Verifiers and aggregation\n\nThe final verifiers also read the intermediate "
         "predictions, ranked with ARW's current scales; those scores never enter its "
         "history. A cheaper proxy set can go on the optional proxy_verifiers input."),
    ],
    "ltx2_evosearch_arw": [
        ((1560, 360), (360, 420),
         "EvoSearch on LTX-2\n\nEvolves the initial noise (step 0) and the states after 4 of "
         "the 8 distilled steps: elites are kept, tournament winners mutated in the model's own "
         "noise scaling (guide frames never noised). 4 + 3 + 3 candidates; unmutated elites are "
         "never sampled again."),
        ((40, 620), (700, 420), LTX2_FILES),
        ((2360, 600), (360, 300), LTX2_VERIFIERS),
    ],
    "toyav_evosearch_javisscore": [
        ((1180, 60), (440, 300),
         "EvoSearch with a neural sync verifier\n\nAs the EvoSearch example, with the "
         "paper's audio-video synchrony reward, JavisScore, in place of AV-Align. It needs "
         "ImageBind: models/imagebind/imagebind_huge.pth (CC BY-NC-SA 4.0, from "
         "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth) and the model code "
         "(pip install --no-deps imagebind-unofficial==0.1.1 ftfy regex iopath einops timm)."),
        ((760, 470), (400, 250),
         "Verifiers and aggregation\n\nJavisScore compares every frame of each 2 s window "
         "with that window's sound (the worst 40 % count). Paired with a text verifier under "
         "ARW, as the paper pairs it with VideoReward-TA."),
    ],
}

BUILD = """async ([api, layout, notes]) => {
  const app = window.app;
  await app.loadApiJson(api, 'workflow.json');
  await new Promise((done) => setTimeout(done, 500));
  for (const node of app.graph.nodes) {
    const pos = layout[String(node.id)];
    if (pos) node.pos = [pos[0], pos[1]];
    for (const w of node.widgets || []) if (w.name === 'control_after_generate') w.value = 'fixed';
  }
  for (const [pos, size] of notes) {
    const note = window.LiteGraph.createNode('Note');
    note.pos = pos;
    note.size = size;
    app.graph.add(note);
  }
  return app.graph.serialize();
}"""


def main() -> None:
    server = ComfyServer(Path(tempfile.mkdtemp(prefix="avits-build-")))
    server.start()
    try:
        with open_frontend(server) as page:
            for name, notes in NOTES.items():
                api = json.loads((REPO / "workflows" / "api" / f"{name}.json").read_text())
                ui = page.evaluate(BUILD, [api, LAYOUTS[name], notes])
                # the notes' text goes in here: set from script, the widget value is not serialised
                for node, (_, _, text) in zip([n for n in ui["nodes"] if n["type"] == "Note"], notes):
                    node["widgets_values"] = [text]
                (REPO / "workflows" / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
                print(f"wrote workflows/{name}.json")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
