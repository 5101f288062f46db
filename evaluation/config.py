"""The evaluation config: one TOML file, every key checked (an unknown key is an error that names
it and says which keys the table takes). docs/evaluation.md documents each key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..search import methods as search_methods
from ..search.aggregation import AGGREGATORS as search_aggregators

AGGREGATORS = ("arw_shared", *(a for a in search_aggregators if a != "z_score_fixed"))
"""ARW with one state carried across the prompts in order (the paper's setting), and the
aggregators of search.aggregation (ARW fresh for each prompt and seed, the fixed rules) but the
z-score with fixed statistics, which no config gives."""
ANALYSIS_AND_WORKFLOW = ("x0_correlation", "workflow")


def method_kinds() -> tuple[str, ...]:
    """naive, every registered search method (search.methods), the analyses and workflows."""
    return ("naive", *search_methods.REGISTRY, *ANALYSIS_AND_WORKFLOW)
ANALYSES = ("x0_correlation", "decoder_agreement")
"""Method kinds that measure something about the search instead of searching (no baseline)."""


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key."""


def _take(table: dict, where: str, allowed: dict[str, type | tuple[type, ...]]) -> dict:
    """``table``'s keys checked against ``allowed`` (name -> accepted types)."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                          f"in [{where}]; the keys there are {', '.join(sorted(allowed))}")
    for key, value in table.items():
        types = allowed[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ConfigError(f"{where}.{key} must be {_names(types)}, got {value!r}")
        if not isinstance(value, types):
            raise ConfigError(f"{where}.{key} must be {_names(types)}, got {value!r}")
    return table


def _names(types) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


@dataclass(frozen=True)
class Prompts:
    """Where the prompts come from: a built-in ToyAV set or a text / CSV / JSONL file."""

    set: str | None = None
    file: Path | None = None
    column: str = "prompt"
    count: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Method:
    """One search method; Best-of-N with a list of n expands to one arm per n."""

    kind: str
    options: dict[str, Any]
    label: str
    draft: dict[str, Any] | None = None
    """For a method that explores with a draft generator: the [generator] settings the draft
    changes (e.g. {"steps": 6})."""


@dataclass(frozen=True)
class ComfyUI:
    servers: tuple[str, ...]
    timeout_s: float = 600.0


@dataclass(frozen=True)
class EvalConfig:
    name: str
    source: Path
    output: Path
    seeds: tuple[int, ...]
    prompts: Prompts
    generator: dict[str, Any]
    selection: tuple[str, ...]
    scale: dict[str, float]
    metrics_oracle: bool
    metrics_verifiers: tuple[str, ...]
    groups: dict[str, str]
    methods: tuple[Method, ...]
    aggregators: tuple[str, ...]
    weights: dict[str, float] | None
    arw: dict[str, Any] = field(default_factory=dict)
    aggregator_specs: dict[str, tuple[str, dict | None]] = field(default_factory=dict)
    """label -> (aggregator name, its own weights or None for the config's)."""
    comfyui: ComfyUI | None = None
    seed_per_prompt: bool = False
    """Each prompt draws from its own seeds (derived from the prompt and the config's seed), so a
    baseline is not one lucky draw shared by every prompt."""
    gallery: int = 4
    bootstrap: int = 2000
    metrics_quality: tuple[str, ...] = ()
    """VBench's quality dimensions computed on each chosen clip (verifiers.vbench)."""
    quality_models: Path | None = None
    """The folder holding their weight files (ComfyUI's models/vbench/ layout)."""

    @property
    def backend(self) -> str:
        return "comfyui" if self.generator["kind"] == "comfyui" else "inprocess"

    def arms(self) -> list[tuple[Method, str]]:
        """(method, aggregator) pairs: naive and workflows once, searches per aggregator."""
        out = []
        for m in self.methods:
            if m.kind in ("naive", "workflow", "decoder_agreement"):
                out.append((m, "-"))
            else:
                out += [(m, a) for a in self.aggregators]
        return out


def _method(entry: dict, i: int) -> list[Method]:
    where = f"methods[{i}]"
    kind = entry.get("kind")
    if kind not in method_kinds():
        raise ConfigError(f"{where}.kind must be one of {', '.join(method_kinds())}, got {kind!r}")
    if kind == "naive":
        _take(entry, where, {"kind": str})
        return [Method("naive", {}, "naive")]
    if kind == "best_of_n":
        _take(entry, where, {"kind": str, "n": (int, list)})
        ns = entry.get("n", [search_methods.get("best_of_n").config().n])
        ns = [ns] if isinstance(ns, int) else ns
        if not ns or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in ns):
            raise ConfigError(f"{where}.n must be a positive integer or a list of them, got {ns!r}")
        return [Method("best_of_n", {"n": n}, f"best_of_n[n={n}]") for n in ns]
    if kind in search_methods.REGISTRY:
        method = search_methods.get(kind)
        _take(entry, where, {"kind": str, "label": str, **({"draft": dict} if method.draft else {}),
                             **{f: (int, float, str, list, bool) for f in method.fields()}})
        settings = {k: v for k, v in entry.items() if k not in ("kind", "label", "draft")}
        try:
            method.make(settings)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
        draft = entry.get("draft", {}) if method.draft else None
        shown = {**settings, **{f"draft.{k}": v for k, v in (draft or {}).items()}}
        return [Method(kind, settings, entry.get("label") or method.label(shown), draft)]
    if kind == "x0_correlation":
        _take(entry, where, {"kind": str, "n": int, "steps": list, "label": str})
        return [Method("x0_correlation", {"n": entry.get("n", 16), "steps": entry.get("steps", [3, 6, 9, 12, 15, 18, 21, 24, 27])},
                       entry.get("label") or "x0_correlation")]
    keys = {"kind": str, "label": str, "workflow": str, "search_node": str, "prompt_inputs": list,
            "seed_inputs": list, "overrides": dict, "compare_decoders": str}
    _take(entry, where, keys)
    for key in ("label", "workflow", "search_node", "prompt_inputs"):
        if key not in entry:
            raise ConfigError(f"{where}.{key} is required for a workflow method")
    # compare_decoders names the AVITS_ComfyAVGenerator whose scoring_vae is checked against
    # its full VAE (evaluation/agreement.py)
    kind = "decoder_agreement" if "compare_decoders" in entry else "workflow"
    return [Method(kind, {k: v for k, v in entry.items() if k not in ("kind", "label")},
                   entry["label"])]


def load(path: Path) -> EvalConfig:
    """The config at ``path``; relative paths in it are relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse(raw, path)


def parse(raw: dict, source: Path) -> EvalConfig:
    top = _take(raw, "top level", {
        "name": str, "output": str, "seeds": list, "prompts": dict, "generator": dict,
        "selection": dict, "metrics": dict, "methods": list, "aggregators": list, "weights": dict,
        "arw": dict, "comfyui": dict, "gallery": int, "bootstrap": int, "seed_per_prompt": bool})
    base = source.parent
    for key in ("prompts", "generator", "selection", "methods"):
        if key not in top:
            raise ConfigError(f"the config needs [{key}]" if key != "methods" else "the config needs [[methods]]")
    p = _take(top["prompts"], "prompts", {"set": str, "file": str, "column": str, "count": int, "seed": int})
    if ("set" in p) == ("file" in p):
        raise ConfigError("[prompts] needs exactly one of 'set' (a built-in set) or 'file'")
    prompts = Prompts(p.get("set"), (base / p["file"]) if "file" in p else None, p.get("column", "prompt"),
                      p.get("count"), p.get("seed", 0))
    gen = dict(top["generator"])
    if gen.get("kind") not in ("toyav", "comfyui"):
        raise ConfigError(f"generator.kind must be 'toyav' or 'comfyui', got {gen.get('kind')!r}")
    if gen["kind"] == "toyav":
        _take(gen, "generator", {"kind": str, "world": str, "steps": int, "guidance": (float, int),
                                 "coupling": (float, int), "caption_noise": (float, int)})
    else:
        _take(gen, "generator", {"kind": str})
    sel = _take(top["selection"], "selection", {"verifiers": list, "scale": dict})
    metrics = _take(top.get("metrics", {}), "metrics", {"oracle": bool, "verifiers": list, "groups": dict,
                                                        "quality": list, "quality_models": str})
    quality, quality_models = _quality(metrics, gen["kind"], base)
    methods = tuple(m for i, e in enumerate(top["methods"]) for m in _method(_entry(e, i), i))
    if gen["kind"] == "comfyui":
        if any(m.kind not in ("workflow", "decoder_agreement") for m in methods):
            raise ConfigError("with generator.kind = 'comfyui' every method is kind = 'workflow'")
        if "comfyui" not in top:
            raise ConfigError("generator.kind = 'comfyui' needs [comfyui] with servers = [...]")
    elif any(m.kind in ("workflow", "decoder_agreement") for m in methods):
        raise ConfigError("kind = 'workflow' methods need generator.kind = 'comfyui'")
    searches = [m for m in methods if m.kind not in ANALYSES]
    if searches and not any(m.kind == "naive" or m.label == "naive" for m in methods):
        raise ConfigError("[[methods]] needs the baseline: a kind = 'naive' method (or a workflow "
                          "labelled 'naive'), which Improvement % is relative to")
    aggregators, specs = [], {}
    for i, entry in enumerate(top.get("aggregators", ["arw_shared"])):
        if isinstance(entry, dict):  # {name = "weighted_sum", label = "tuned", weights = {...}}
            _take(entry, f"aggregators[{i}]", {"name": str, "label": str, "weights": dict})
            name, label = entry.get("name"), entry.get("label") or entry.get("name")
            weights = {k: float(v) for k, v in entry.get("weights", {}).items()} or None
        else:
            name, label, weights = entry, entry, None
        if name not in AGGREGATORS:
            raise ConfigError(f"aggregator {name!r} unknown; choose from {', '.join(AGGREGATORS)}")
        if label in specs:
            raise ConfigError(f"two aggregators are labelled {label!r}; give each its own label")
        aggregators.append(label)
        specs[label] = (name, weights)
    comfy = None
    if "comfyui" in top:
        c = _take(top["comfyui"], "comfyui", {"servers": list, "timeout_s": (float, int)})
        if not c.get("servers"):
            raise ConfigError("comfyui.servers must list at least one server URL")
        comfy = ComfyUI(tuple(c["servers"]), float(c.get("timeout_s", 600)))
    seeds = top.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds must be a list of non-negative integers, got {seeds!r}")
    return EvalConfig(
        name=top.get("name", source.stem), source=source,
        output=base / top.get("output", f"eval-out/{source.stem}"), seeds=tuple(seeds),
        prompts=prompts, generator=gen, selection=tuple(sel.get("verifiers", [])),
        scale={k: float(v) for k, v in sel.get("scale", {}).items()},
        metrics_oracle=metrics.get("oracle", gen["kind"] == "toyav"),
        metrics_verifiers=tuple(metrics.get("verifiers", [])),
        groups={k: str(v) for k, v in metrics.get("groups", {}).items()},
        methods=methods, aggregators=tuple(aggregators), aggregator_specs=specs,
        weights={k: float(v) for k, v in top["weights"].items()} if "weights" in top else None,
        arw=_take(top.get("arw", {}), "arw", {"lr": (float, int), "iters": int, "optimizer": str}),
        comfyui=comfy, seed_per_prompt=top.get("seed_per_prompt", False),
        gallery=top.get("gallery", 4), bootstrap=top.get("bootstrap", 2000),
        metrics_quality=quality, quality_models=quality_models)


def _quality(metrics: dict, generator: str, base: Path) -> tuple[tuple[str, ...], Path | None]:
    """[metrics] quality (VBench dimension names) and quality_models (their folder), checked."""
    names = metrics.get("quality", [])
    if "quality_models" in metrics and not names:
        raise ConfigError("metrics.quality_models is set but metrics.quality names no dimension")
    if not names:
        return (), None
    from ..verifiers.vbench import DIMENSIONS
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(f"metrics.quality must name distinct VBench dimensions among "
                          f"{', '.join(DIMENSIONS)}, got {names!r}")
    if generator == "comfyui":
        raise ConfigError("metrics.quality is computed in-process on the chosen clip, which stays "
                          "on the server with generator.kind = 'comfyui': score the saved clips "
                          "with AVITS VBench Quality -> AVITS Score AV instead")
    if "quality_models" not in metrics:
        raise ConfigError("metrics.quality needs metrics.quality_models: the folder holding the "
                          "VBench weight files (e.g. ComfyUI's models/vbench)")
    folder = base / metrics["quality_models"]
    if not folder.is_dir():
        raise ConfigError(f"metrics.quality_models: no folder {folder}")
    return tuple(names), folder


def _entry(e: Any, i: int) -> dict:
    if not isinstance(e, dict):
        raise ConfigError(f"methods[{i}] must be a table ([[methods]])")
    return e
