"""What each evaluation metric means for the tables: its group (Text, AV or Quality, as the paper
groups its Improvement %: Quality is its VBench column) and its direction. Unknown names default
to a text metric where higher is better; a config's [metrics] groups override the group."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    group: str
    higher_is_better: bool


AV_WORDS = ("sync", "av_align", "javisscore", "avh", "av_ib")
QUALITY = ("subject_consistency", "background_consistency", "motion_smoothness",
           "aesthetic_quality", "imaging_quality")
"""VBench's quality dimensions (verifiers.vbench), higher is better."""


def info(name: str, groups: dict[str, str] | None = None) -> MetricInfo:
    """``*_error`` / ``*_error_s`` metrics are lower-is-better; VBench's dimensions are
    Quality, sync metrics AV."""
    lower = name.endswith("_error") or name.endswith("_error_s")
    group = (groups or {}).get(name) or ("quality" if name in QUALITY else
                                         "av" if any(w in name for w in AV_WORDS) else "text")
    return MetricInfo(name, group, not lower)


def infos(names, groups: dict[str, str] | None = None) -> dict[str, MetricInfo]:
    return {n: info(n, groups) for n in names}
