"""The pack's own socket types, so ComfyUI only lets matching nodes connect."""

from comfy_api.latest import io

Generator = io.Custom("AVITS_GENERATOR")
Verifiers = io.Custom("AVITS_VERIFIERS")
Aggregator = io.Custom("AVITS_AGGREGATOR")
Report = io.Custom("AVITS_REPORT")
