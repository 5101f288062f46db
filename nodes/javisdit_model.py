"""JavisDiT as a ComfyUI model, registered the way core registers its own: a
``supported_models_base.BASE`` + ``model_base.BaseModel`` pair in a ModelPatcher. It is a
rectified flow (ModelType.FLOW, CONST sampling with ComfyUI's t = 1000 sigma), so the module
returns minus the velocity; the latent is a NestedTensor (video, audio) unpacked through
``latent_shapes`` as core's LTXAV does.

The conditioning carries what the reference passes beside the latent: the T5 states and mask,
the prior's Gaussian (drawn here from the sampler's seed, row i of a batch from seed + i, so a
candidate is reproducible), and the clip's fps and pixel size. The negative of
AVITS_JavisDiTTextEncode is a marker for which the model uses its learned null caption and null
prior, under the positive's text mask, exactly as the reference's unconditional pass does.
"""

from __future__ import annotations

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models_base
import torch

from ..generators.javisdit.dit import DiTConfig, VASTDiT3, read_dit, sizes


class JavisDiTLatent(comfy.latent_formats.LatentFormat):
    """The OpenSora/AudioLDM2 latents are already normalised by their VAEs' shift and scale."""

    latent_channels = 4
    latent_dimensions = 3


class ComfyVASTDiT3(VASTDiT3):
    """VASTDiT3 under ComfyUI's call: ``x`` = [video, audio], ``timesteps`` = 1000 sigma."""

    def forward(self, x, timesteps, context=None, control=None, transformer_options={},
                text_mask=None, prior=None, use_null=None, video_info=None, **kwargs):
        video, audio = x
        B, cfg = video.shape[0], self.config
        y = context
        if use_null is not None and bool((use_null > 0.5).any()):
            null_y, null_s, null_t = self.null_condition(B)
            null = (use_null.reshape(B) > 0.5)[:, None, None]
            y = torch.where(null, null_y.reshape(B, cfg.text_tokens, -1).to(y), y)
            prior = torch.where(null, torch.cat((null_s, null_t), 1).to(prior), prior)
        spatial, temporal = prior.split([cfg.spatial_prior_len, cfg.temporal_prior_len], dim=1)
        fps = torch.full((B,), float(video_info["fps"]), device=video.device)
        v, a = super().forward(video, audio, timesteps, y, text_mask, spatial, temporal, fps,
                               video_info["height"], video_info["width"])
        return [-v[:, :cfg.in_channels], -a[:, :cfg.audio_in_channels]]


def prior_sample(mean: torch.Tensor, std: torch.Tensor, seed: int, batch: int) -> torch.Tensor:
    """The prior's Gaussian sample for each row of a batch: row i from seed + i."""
    eps = torch.stack([torch.randn(mean.shape[1:], generator=torch.Generator().manual_seed(seed + i))
                       for i in range(batch)])
    return mean.float().cpu() + std.float().cpu() * eps


class JavisDiTModel(comfy.model_base.BaseModel):
    def __init__(self, model_config, model_type=comfy.model_base.ModelType.FLOW, device=None):
        super().__init__(model_config, model_type, device=device, unet_model=ComfyVASTDiT3)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        if "latent_shapes" in kwargs:
            out["latent_shapes"] = comfy.conds.CONDConstant(kwargs["latent_shapes"])
        mask = kwargs.get("attention_mask")
        if mask is not None:
            out["text_mask"] = comfy.conds.CONDRegular(mask)
        info = kwargs.get("javisdit_video")
        if info is not None:
            out["video_info"] = comfy.conds.CONDConstant(info)
        batch = kwargs["noise"].shape[0]
        null = bool(kwargs.get("javisdit_null", False))
        out["use_null"] = comfy.conds.CONDRegular(torch.full((batch, 1), float(null)))
        cfg: DiTConfig = self.diffusion_model.config
        tokens = cfg.spatial_prior_len + cfg.temporal_prior_len
        if null:
            prior = torch.zeros(batch, tokens, cfg.prior_channels)
        else:
            prior = prior_sample(kwargs["prior_mean"], kwargs["prior_std"], int(kwargs.get("seed") or 0), batch)
        out["prior"] = comfy.conds.CONDRegular(prior)
        return out


class JavisDiTConfig(comfy.supported_models_base.BASE):
    unet_config: dict = {}
    unet_extra_config: dict = {}
    sampling_settings = {"shift": 1.0, "multiplier": 1000}  # exact shifted sigmas: our scheduler
    latent_format = JavisDiTLatent
    memory_usage_factor = 0.5  # an estimate for ComfyUI's memory planning; not measured on a GPU
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]

    def model_type(self, state_dict, prefix=""):
        return comfy.model_base.ModelType.FLOW

    def get_model(self, state_dict, prefix="", device=None):
        return JavisDiTModel(self, device=device)


def load_javisdit(folder, dtype: torch.dtype | None = None,
                  load_device: torch.device | None = None) -> comfy.model_patcher.ModelPatcher:
    """The DiT of a JavisDiT folder as a MODEL, weights managed by ComfyUI (as sd.py's
    load_diffusion_model_state_dict does for core models)."""
    cfg, sd = read_dit(folder)
    mm = comfy.model_management
    load_device = load_device or mm.get_torch_device()
    offload_device = mm.unet_offload_device()
    config = JavisDiTConfig(sizes(cfg))
    weight_dtype = next(iter(sd.values())).dtype
    if dtype is None:
        dtype = mm.unet_dtype(model_params=sum(v.numel() for v in sd.values()),
                              supported_dtypes=config.supported_inference_dtypes, weight_dtype=weight_dtype)
    config.set_inference_dtype(dtype, mm.unet_manual_cast(dtype, load_device, config.supported_inference_dtypes),
                               device=load_device)
    model = config.get_model(sd, "", device=offload_device)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
    model.load_model_weights(sd, "")
    return patcher
