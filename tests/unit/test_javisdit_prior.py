"""JavisDiT's ST-prior on tiny random files in the published layout (a tiny ImageBind and a tiny
prior folder), loaded by the real loaders. The prior is checked against an op-by-op
re-computation of the reference's procedure, written here, and against ``torch.nn.Transformer``
built as the reference builds it. Also checked: the ImageBind hidden states, seeded draws, batch
independence, the official key layouts and bad folders."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.generators.javisdit.prior import (PUBLISHED, PriorConfig,
                                                     STPrior, load_prior, text_hidden, text_tokens)
from comfyui_avits.verifiers.imagebind import load_imagebind
from comfyui_avits.verifiers.imagebind.package import tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_imagebind  # noqa: E402
import tiny_javisdit_prior  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # nn.Transformer, norm_first
TEXTS = ["a dog barks twice on a beach", "thunder rolls over a dark city at night"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    tiny_imagebind.write(d)
    tiny_javisdit_prior.write(d)
    return d


@pytest.fixture(scope="module")
def imagebind(models_dir):
    return load_imagebind(models_dir / "imagebind" / "imagebind_huge.pth")


@pytest.fixture(scope="module")
def folder(models_dir) -> Path:
    return models_dir / "javisdit" / "JavisDiT-v0.1-prior"


@pytest.fixture(scope="module")
def prior(folder) -> STPrior:
    return load_prior(folder)


@pytest.fixture(scope="module")
def hidden(imagebind) -> torch.Tensor:
    return text_hidden(imagebind, text_tokens(TEXTS, tokenizer()))


def copy_folder(src: Path, dst: Path, state: dict | None = None, config: dict | None = None,
                weights: str = "model.safetensors") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / "config.json").read_text()) | (config or {})
    (dst / "config.json").write_text(json.dumps(cfg))
    state = load_file(str(src / "model.safetensors")) if state is None else state
    if weights.endswith(".safetensors"):
        save_file(state, str(dst / weights))
    else:
        torch.save(state, dst / weights)
    return dst


# ---- the reference's procedure, op by op ---------------------------------------------------

def reference_gaussian(state: dict, cfg: dict, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """STPriorExtractor.encode up to DiagonalGaussianDistribution, as torch runs it at inference
    (eval, no grad): encoder feed-forward with the exact GELU (the fused kernel), decoder
    feed-forward with ReLU (the activation the deep-copied decoder layers end up with)."""
    def lin(x, p):
        return x @ state[f"{p}.weight"].T + state[f"{p}.bias"]

    def norm(x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * state[f"{p}.weight"] + state[f"{p}.bias"]

    def attention(q_in, kv_in, p):
        w, b, d, h = state[f"{p}.in_proj_weight"], state[f"{p}.in_proj_bias"], q_in.shape[-1], cfg["nhead"]
        q, k, v = (x @ w[i * d:(i + 1) * d].T + b[i * d:(i + 1) * d]
                   for i, x in enumerate((q_in, kv_in, kv_in)))
        split = lambda t: t.reshape(t.shape[0], t.shape[1], h, d // h).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1) @ v
        return lin(a.transpose(1, 2).reshape(q_in.shape), f"{p}.out_proj")

    x = lin(text, "in_proj")
    for i in range(cfg["num_encoder_layers"]):
        p = f"prior_extractor.encoder.layers.{i}"
        h = norm(x, f"{p}.norm1")
        x = x + attention(h, h, f"{p}.self_attn")
        u = lin(norm(x, f"{p}.norm2"), f"{p}.linear1")
        x = x + lin(0.5 * u * (1 + torch.erf(u / math.sqrt(2))), f"{p}.linear2")
    memory = norm(x, "prior_extractor.encoder.norm")
    y = torch.cat((state["spatial_query_emb"], state["temporal_query_emb"]), 1).repeat(len(text), 1, 1)
    for i in range(cfg["num_decoder_layers"]):
        p = f"prior_extractor.decoder.layers.{i}"
        h = norm(y, f"{p}.norm1")
        y = y + attention(h, h, f"{p}.self_attn")
        y = y + attention(norm(y, f"{p}.norm2"), memory, f"{p}.multihead_attn")
        y = y + lin(torch.clamp(lin(norm(y, f"{p}.norm3"), f"{p}.linear1"), min=0), f"{p}.linear2")
    out = lin(norm(y, "prior_extractor.decoder.norm"), "out_proj")
    c = cfg["out_dim"]
    mean, logvar = out[..., :c], torch.clamp(out[..., c:], -30.0, 20.0)
    return mean, torch.exp(0.5 * logvar)


def test_the_prior_equals_the_reference_procedure(folder, prior, hidden):
    state = load_file(str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    mean, std = reference_gaussian(state, cfg, hidden)
    dist = prior.distribution(hidden)
    torch.testing.assert_close(dist.mean, mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(dist.std, std, atol=1e-5, rtol=0)
    spatial, temporal = prior(hidden, torch.Generator().manual_seed(7))
    x = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(7))
    assert spatial.shape == temporal.shape == (2, 32, 128)
    torch.testing.assert_close(spatial, x[:, :32], atol=1e-5, rtol=0)
    torch.testing.assert_close(temporal, x[:, 32:], atol=1e-5, rtol=0)
    # the reference's own draw: torch.randn on the global CPU generator
    torch.manual_seed(3)
    spatial, _ = prior(hidden)
    torch.manual_seed(3)
    torch.testing.assert_close(spatial, (mean + std * torch.randn(mean.shape))[:, :32], atol=1e-5, rtol=0)


def test_the_transformer_matches_torch_nn_transformer_as_the_reference_runs_it(folder, prior):
    cfg = json.loads((folder / "config.json").read_text())
    ref = nn.Transformer(d_model=cfg["hidden_size"], nhead=cfg["nhead"],
                         num_encoder_layers=cfg["num_encoder_layers"],
                         num_decoder_layers=cfg["num_decoder_layers"],
                         dim_feedforward=cfg["hidden_size"] * cfg["feedforward_scale"], dropout=0.0,
                         activation=nn.GELU(approximate="tanh"), batch_first=True, norm_first=True)
    n = len("prior_extractor.")
    ref.load_state_dict({k[n:]: v for k, v in load_file(str(folder / "model.safetensors")).items()
                         if k.startswith("prior_extractor.")})
    ref.eval()
    assert ref.decoder.layers[0].activation is F.relu  # torch's deep-copy quirk the port mirrors
    g = torch.Generator().manual_seed(1)
    src = torch.randn(2, 77, cfg["hidden_size"], generator=g)
    tgt = torch.randn(2, 64, cfg["hidden_size"], generator=g)
    with torch.no_grad():
        want = ref(src, tgt)
        got = prior.prior_extractor(src, tgt)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # with gradients on, torch takes its unfused path (tanh GELU in the encoder): a different
    # number, which the reference's inference (grad disabled) never computes
    assert (ref(src, tgt).detach() - want).abs().max() > 1e-5


# ---- ImageBind text hidden states ------------------------------------------------------------

def test_tokens_follow_javisdit_tokenizer():
    tok = tokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    long = " ".join(["birds"] * 100)
    tokens = text_tokens(["a dog barks", long], tokenizer())
    ids = [sot] + tok.encode("a dog barks") + [eot]
    assert tokens.shape == (2, 77) and tokens.dtype == torch.long
    assert tokens[0, :len(ids)].tolist() == ids and not tokens[0, len(ids):].any()
    # too long: cut to 77 without an end token (JavisDiT's copy), where imagebind-unofficial's
    # tokenizer forces one into the last slot
    assert tokens[1].tolist() == ([sot] + tok.encode(long))[:77] and eot not in tokens[1].tolist()
    assert tok([long])[76].item() == eot


def test_text_hidden_is_the_text_trunk_output_of_the_models_own_forward(imagebind, hidden):
    captured = {}
    handle = imagebind.modality_trunks["text"].register_forward_hook(
        lambda module, args, out: captured.setdefault("trunk", out))
    try:
        with torch.no_grad():
            imagebind({"text": text_tokens(TEXTS, tokenizer())})
    finally:
        handle.remove()
    assert hidden.shape == (2, 77, 64)
    torch.testing.assert_close(hidden, captured["trunk"], atol=0, rtol=0)
    torch.testing.assert_close(text_hidden(imagebind, text_tokens(TEXTS[1:], tokenizer()))[0], hidden[1],
                               atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        text_tokens([], tokenizer())


# ---- sampling ----------------------------------------------------------------------------------

def test_a_seed_fixes_the_draw(prior, hidden):
    a = prior(hidden, torch.Generator().manual_seed(11))
    b = prior(hidden, torch.Generator().manual_seed(11))
    c = prior(hidden, torch.Generator().manual_seed(12))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0]) and not torch.allclose(a[1], c[1])
    # the deterministic part stored once, the noise drawn per candidate
    dist = prior.distribution(hidden[:1])
    assert dist.eps_shape == (1, 64, 128)
    eps = dist.draw(torch.Generator().manual_seed(5), batch=3)
    spatial, temporal = dist.sample(eps)
    assert spatial.shape == (3, 32, 128) and temporal.shape == (3, 32, 128)
    for i in range(3):
        torch.testing.assert_close(spatial[i], (dist.mean + dist.std * eps[i])[0, :32])
    assert not torch.allclose(spatial[0], spatial[1])


def test_each_text_is_independent_of_its_batch(prior, hidden):
    both = prior.distribution(hidden)
    for i in range(2):
        alone = prior.distribution(hidden[i:i + 1])
        torch.testing.assert_close(both.mean[i:i + 1], alone.mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(both.std[i:i + 1], alone.std, atol=1e-6, rtol=0)
    assert not torch.allclose(both.mean[0], both.mean[1])


# ---- loading -----------------------------------------------------------------------------------

def test_the_architecture_comes_from_config_json(folder, prior):
    assert prior.config == PriorConfig(text_emb_dim=64, hidden_size=32, nhead=2,
                                       num_encoder_layers=1, num_decoder_layers=1)
    assert PriorConfig() == PriorConfig.from_json({"model_type": "STPriorExtractor", "encode_va": True})
    assert not prior.training and not any(p.requires_grad for p in prior.parameters())
    wide = tiny_javisdit_prior.write(folder.parents[2] / "wide", seed=1, out_dim=16, hidden_size=64,
                                     num_encoder_layers=2)
    model = load_prior(wide["folder"])
    assert model.config.out_dim == 16 and len(model.prior_extractor.encoder.layers) == 2
    s, t = model(torch.randn(1, 77, 64), torch.Generator().manual_seed(0))
    assert s.shape == t.shape == (1, 32, 16)


def test_official_layouts_load(folder, prior, hidden, imagebind, tmp_path):
    state = load_file(str(folder / "model.safetensors"))
    extra = {f"text_encoder.{k}": v.clone() for k, v in imagebind.state_dict().items()
             if k.startswith(("modality_trunks.text.", "modality_preprocessors.text."))}
    extra |= {"va_spatial_encoder.mlp.fc1.weight": torch.zeros(512, 128),
              "discriminator.cls_token": torch.zeros(1, 1, 128),
              "video_embedder.proj.weight": torch.zeros(128, 4, 1, 2, 2)}
    want = prior.distribution(hidden).mean
    for name, weights, st in (("with_text_encoder", "model.safetensors", state | extra),
                              ("bin", "pytorch_model.bin", state)):
        model = load_prior(copy_folder(folder, tmp_path / name, st, weights=weights))
        assert torch.equal(model.distribution(hidden).mean, want)
    half = load_prior(folder, dtype=torch.bfloat16)
    assert half.out_proj.weight.dtype == torch.bfloat16
    spatial, _ = half(hidden, torch.Generator().manual_seed(0))
    assert spatial.dtype == torch.bfloat16 and torch.isfinite(spatial).all()


def test_bad_folders_say_what_is_wrong(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"config.json.*{PUBLISHED}"):
        load_prior(tmp_path / "nowhere")
    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=f"model.safetensors.*{PUBLISHED}"):
        load_prior(tmp_path / "no_weights")
    state = load_file(str(folder / "model.safetensors"))
    wrong = copy_folder(folder, tmp_path / "wrong", state | {"in_proj.weight": torch.zeros(32, 1024)})
    with pytest.raises(CheckpointError,
                       match=r"wrong/model.safetensors: 'in_proj.weight' is \(32, 1024\)"):
        load_prior(wrong)
    deeper = copy_folder(folder, tmp_path / "deeper", state, config={"num_decoder_layers": 2})
    with pytest.raises(CheckpointError, match="missing prior_extractor.decoder.layers.1"):
        load_prior(deeper)
    stray = copy_folder(folder, tmp_path / "stray", state | {"extra.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unexpected extra.weight"):
        load_prior(stray)
    heads = copy_folder(folder, tmp_path / "heads", state, config={"nhead": 3})
    with pytest.raises(CheckpointError, match="does not divide into 3 heads"):
        load_prior(heads)
    listing = tmp_path / "listing"
    copy_folder(folder, listing, state, weights="pytorch_model.bin")
    torch.save([1, 2], listing / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_prior(listing)
