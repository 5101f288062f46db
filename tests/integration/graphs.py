"""API graphs for the integration tests: the shipped workflows with inputs changed, and the
reports and state files they leave, read strictly (a NaN token is an error)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from comfyctl import REPO

WORKFLOWS = REPO / "workflows" / "api"
SEARCH, ARW = "6", "5"


def strict(text: str):
    def refuse(token):
        raise ValueError(f"non-finite number {token} in strict JSON")
    return json.loads(text, parse_constant=refuse)


def load(name: str, state: str, **search_inputs) -> dict:
    graph = json.loads((WORKFLOWS / f"{name}.json").read_text())
    graph[ARW]["inputs"]["name"] = state
    graph[SEARCH]["inputs"].update(search_inputs)
    return graph


def fixed_rewards(graph: dict, columns: dict[str, list[float]], aggregator: dict | None = None) -> dict:
    """Replace the verifiers by ones that give ``columns`` (name -> reward per candidate)."""
    ids = []
    for k, (name, values) in enumerate(columns.items()):
        ids.append(f"f{k}")
        graph[f"f{k}"] = {"class_type": "AVITSTest_FixedRewards",
                          "inputs": {"name": name, "values": ",".join(map(str, values))}}
    graph["fset"] = {"class_type": "AVITS_VerifierSet",
                     "inputs": {f"verifiers.verifier{i}": [n, 0] for i, n in enumerate(ids)}}
    graph[SEARCH]["inputs"]["verifiers"] = ["fset", 0]
    if aggregator is not None:
        graph["agg"] = {"class_type": "AVITS_Aggregator", "inputs": aggregator}
        graph[SEARCH]["inputs"]["aggregator"] = ["agg", 0]
    return graph


def report_of(entry: dict, node: str = SEARCH) -> dict:
    return strict(entry["outputs"][node]["avits_report"][0])


def state_path(comfy, state: str) -> Path:
    return comfy.base / "user" / "avits" / "arw" / f"{state}.json"


def arw_file(comfy, state: str) -> dict:
    return strict(state_path(comfy, state).read_text())


LTX_SIDE, LTX_FRAMES, LTX_FPS = 64, 9, 25


def ltx_graph(tiny: dict[str, Path], model: str = "ltxav") -> dict:
    """ComfyUI's standard LTX-2 text-to-(audio-)video graph of core nodes on the tiny twins
    (scripts/tiny_ltx.py); LotusConditioning stands in for the text encoder, as no tiny Gemma
    (or T5) can be made. Ends in SamplerCustomAdvanced ("14") -> decode -> save."""
    g = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny[model].name, "weight_dtype": "default"}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": tiny["vae"].name}},
        "4": {"class_type": "LotusConditioning", "inputs": {}},
        "5": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["4", 0]}},
        "6": {"class_type": "LTXVConditioning",
              "inputs": {"positive": ["4", 0], "negative": ["5", 0], "frame_rate": LTX_FPS}},
        "7": {"class_type": "EmptyLTXVLatentVideo",
              "inputs": {"width": LTX_SIDE, "height": LTX_SIDE, "length": LTX_FRAMES, "batch_size": 1}},
        "10": {"class_type": "RandomNoise", "inputs": {"noise_seed": 42}},
        "11": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "12": {"class_type": "LTXVScheduler",
               "inputs": {"steps": 4, "max_shift": 2.05, "base_shift": 0.95, "stretch": True,
                          "terminal": 0.1, "latent": ["7", 0]}},
        "13": {"class_type": "CFGGuider",
               "inputs": {"model": ["1", 0], "positive": ["6", 0], "negative": ["6", 1], "cfg": 3.0}},
        "14": {"class_type": "SamplerCustomAdvanced",
               "inputs": {"noise": ["10", 0], "guider": ["13", 0], "sampler": ["11", 0],
                          "sigmas": ["12", 0], "latent_image": ["7", 0]}},
        "16": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["2", 0]}},
        "18": {"class_type": "SaveImage", "inputs": {"images": ["16", 0], "filename_prefix": f"tiny_ltx/{model}"}},
    }
    if model == "ltxav":
        g.update({
            "3": {"class_type": "LTXVAudioVAELoader", "inputs": {"ckpt_name": tiny["audio_vae"].name}},
            "8": {"class_type": "LTXVEmptyLatentAudio",
                  "inputs": {"frames_number": LTX_FRAMES, "frame_rate": LTX_FPS, "batch_size": 1,
                             "audio_vae": ["3", 0]}},
            "9": {"class_type": "LTXVConcatAVLatent",
                  "inputs": {"video_latent": ["7", 0], "audio_latent": ["8", 0]}},
            "15": {"class_type": "LTXVSeparateAVLatent", "inputs": {"av_latent": ["14", 0]}},
            "17": {"class_type": "LTXVAudioVAEDecode", "inputs": {"samples": ["15", 1], "audio_vae": ["3", 0]}},
            "19": {"class_type": "SaveAudio", "inputs": {"audio": ["17", 0], "filename_prefix": f"tiny_ltx/{model}"}},
        })
        g["12"]["inputs"]["latent"] = g["14"]["inputs"]["latent_image"] = ["9", 0]
        g["16"]["inputs"]["samples"] = ["15", 0]
    return g


def ltx_search_graph(tiny: dict[str, Path], search: str = "AVITS_EvoSearch", state: str = "ltx",
                     **search_inputs) -> dict:
    """The same graph with an AVITS search in place of SamplerCustomAdvanced (AV-Align as the
    verifier, a shared ARW state); the winner's latent goes on to ComfyUI's decoders."""
    g = ltx_graph(tiny)
    del g["10"], g["14"]
    g["g"] = {"class_type": "AVITS_ComfyAVGenerator",
              "inputs": {"guider": ["13", 0], "sampler": ["11", 0], "sigmas": ["12", 0],
                         "latent": ["9", 0], "vae": ["2", 0], "audio_vae": ["3", 0],
                         "prompt": "a dog barking", "fps": float(LTX_FPS), "max_batch": 2}}
    g["v"] = {"class_type": "AVITS_AVAlign", "inputs": {"name": "av_align"}}
    g["a"] = {"class_type": "AVITS_ARWState",
              "inputs": {"name": state, "weights": "", "optimizer": "adam", "lr": 0.05,
                         "iterations": 50, "window": 0, "reset": False}}
    common = {"generator": ["g", 0], "verifiers": ["v", 0], "aggregator": ["a", 0], "seed": 0,
              "filename_prefix": "AVITS/ltx"}
    if search == "AVITS_EvoSearch":
        common.update(evolution_steps="0, 2", population_sizes="3, 3, 3", elites=1,
                      mutation_rate=0.2, tournament_ratio=0.5, mutation="reference")
    else:
        common.update(n=3)
    common.update(search_inputs)
    g["s"] = {"class_type": search, "inputs": common}
    g["15"]["inputs"]["av_latent"] = ["s", 2]
    return g


def on_tiny_ltx_checkpoint(g: dict, tiny: dict[str, Path], text_loader: str = "3",
                           positive: str = "4", negative: str = "5") -> None:
    """A shipped LTX-2.x template on the tiny LTX-AV twin, in place: its single checkpoint
    becomes the twin's UNETLoader + VAELoader pair ("1", "1v"), its audio VAE the twin's, and
    LotusConditioning stands in for the text encoder (no tiny Gemma can be made)."""
    del g[text_loader]
    g[positive] = {"class_type": "LotusConditioning", "inputs": {}}
    g[negative] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": [positive, 0]}}
    g["1"] = {"class_type": "UNETLoader", "inputs": {"unet_name": tiny["ltx_ltxav"].name,
                                                     "weight_dtype": "default"}}
    g["1v"] = {"class_type": "VAELoader", "inputs": {"vae_name": tiny["ltx_vae"].name}}
    for node in g.values():
        for key, value in node["inputs"].items():
            if value == ["1", 2]:
                node["inputs"][key] = ["1v", 0]
    g["2"]["inputs"]["ckpt_name"] = tiny["ltx_audio_vae"].name


@contextmanager
def moved_away(path: Path):
    """The model file or folder out of the models folder for a while."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        yield
    finally:
        aside.rename(path)


def run_interrupted(comfy, graph: dict, at: int, timeout: float = 900) -> list[int]:
    """Queue ``graph``, send /interrupt once its progress reaches ``at`` (thousandths of the
    search), and check that it stopped as interrupted; returns the progress updates that came
    after the interrupt was sent (the caller bounds how many)."""
    import pytest
    from comfyctl import ExecutionFailed

    after, sent = [], []

    def on_progress(data):
        if sent:
            after.append(data["value"])
        elif data["value"] >= at:
            sent.append(comfy.post("/interrupt", {}))

    with pytest.raises(ExecutionFailed) as err:
        comfy.run(graph, timeout=timeout, on_progress=on_progress)
    assert "execution_interrupted" in [m[0] for m in err.value.details["status"]["messages"]]
    assert sent, "the search ended before the interrupt was sent"
    return after


def parts(x) -> list:
    """A latent's parts: the streams of a NestedTensor, or the tensor itself."""
    return list(x.unbind()) if getattr(x, "is_nested", False) else [x]


def shapes(x) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in parts(x)]


def equal(a, b) -> bool:
    """Bit for bit, stream by stream."""
    import torch
    return len(parts(a)) == len(parts(b)) and all(torch.equal(p, q) for p, q in zip(parts(a), parts(b)))


def spy_on_states(gen, shapes) -> list:
    """Record ``shapes(state)`` of every state a generator's mutate and denoise return (finals
    and recorded ones), to check that a search keeps the latents' layout."""
    seen: list = []
    for name in ("mutate", "denoise"):
        original = getattr(gen, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            out = _original(*args, **kwargs)
            states = [out] if _name == "mutate" else out[0] + [s for r in out[1].values() for s in r]
            seen.extend(shapes(s) for s in states)
            return out

        setattr(gen, name, spy)
    return seen
