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

# Node positions by API id: generator and verifiers on the left, aggregation below, search right.
LAYOUT = {"1": (40, 60), "2": (40, 460), "3": (40, 580), "4": (380, 480), "5": (40, 720),
          "7": (380, 760), "6": (760, 60), "8": (40, 1000)}

NOTES = {
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
                ui = page.evaluate(BUILD, [api, LAYOUT, notes])
                # the notes' text goes in here: set from script, the widget value is not serialised
                for node, (_, _, text) in zip([n for n in ui["nodes"] if n["type"] == "Note"], notes):
                    node["widgets_values"] = [text]
                (REPO / "workflows" / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
                print(f"wrote workflows/{name}.json")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
