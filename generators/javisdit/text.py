"""JavisDiT's text side: the reference's prompt cleaning and its T5 v1.1 XXL encoder.

The reference (``scripts/inference.py``) appends `` aesthetic score: 6.5.`` to each prompt, then
runs its caption cleaning twice (``text_preprocessing``), then encodes with T5 padded/truncated
to 300 tokens and returns the last hidden state (B, 1, 300, 4096) with the attention mask
(B, 300). The cleaning is re-done here with the standard library (the reference needs
BeautifulSoup only to strip HTML tags; ``_HtmlText`` reproduces what ``BeautifulSoup(s,
"html.parser").text`` returns) plus ``ftfy``, as the reference does.

T5 runs through transformers' ``T5EncoderModel``. Two layouts load through the same code: one
``.safetensors`` file as ComfyUI users keep in ``models/text_encoders`` (``t5xxl_fp16``) and a
transformers folder (``config.json`` + weights, as ``DeepFloyd/t5-v1_1-xxl``). The architecture
is read off the tensor shapes (or ``config.json``), so tiny test twins load as the real files do.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from html.entities import html5 as HTML5_ENTITIES
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import unquote_plus

import torch
from safetensors import safe_open

from ...core.checkpoints import CheckpointError, check_keys, read_file

MAX_TOKENS = 300
AESTHETIC_SCORE = 6.5
FOLDER_URL = "https://huggingface.co/DeepFloyd/t5-v1_1-xxl"
FILE_URL = "https://huggingface.co/comfyanonymous/flux_text_encoders/blob/main/t5xxl_fp16.safetensors"
T5_DEFAULTS = dict(layer_norm_epsilon=1e-6, relative_attention_max_distance=128)
"""T5 hyper-parameters a state dict cannot show (every T5 v1.0/v1.1 size uses these)."""
QUANT_MARKERS = ("scaled_fp8", ".scale_weight", ".scale_input", ".weight_scale", ".input_scale",
                 ".comfy_quant")



# ---- prompt cleaning ---------------------------------------------------------------------------

class _HtmlText(HTMLParser):
    """The text of an HTML fragment as ``BeautifulSoup(markup, "html.parser").text`` gives it:
    the same stdlib tokenizer, references resolved as bs4 does (unknown ``&name;`` stays
    ``&name``, C1 numeric references read as Windows-1252), comments/doctypes/processing
    instructions dropped, text inside script/style/template/rt/rp dropped, and a text run of
    ASCII whitespace only collapsed to one newline or space (outside pre/textarea)."""

    VOID = frozenset("area base basefont bgsound br col command embed frame hr image img input "
                     "isindex keygen link menuitem meta nextid param source spacer track wbr".split())
    HIDDEN = frozenset(("rt", "rp", "style", "script", "template"))
    KEEP_SPACE = frozenset(("pre", "textarea"))
    SPACES = " \n\t\f\r"

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self._open: list[str] = []
        self._run: list[str] = []
        self._kept: list[str] = []
        self._closed_void: list[str] = []

    @classmethod
    def text(cls, markup: str) -> str:
        parser = cls()
        parser.feed(markup)
        parser.close()
        parser._end_run()
        return "".join(parser._kept)

    def _end_run(self, visible: bool | None = None) -> None:
        """Finish the current text run; ``visible`` None means: unless inside a hidden tag."""
        if not self._run:
            return
        run, self._run = "".join(self._run), []
        if not self.KEEP_SPACE.intersection(self._open) and not run.strip(self.SPACES):
            run = "\n" if "\n" in run else " "
        if visible is None:
            visible = not self.HIDDEN.intersection(self._open)
        if visible:
            self._kept.append(run)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._end_run()
        if tag in self.VOID:
            self._closed_void.append(tag)  # a later </tag> is swallowed once, as in bs4
        else:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self._end_run()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._closed_void:
            self._closed_void.remove(tag)
            return
        self._end_run()
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        self._run.append(data)

    def handle_entityref(self, name: str) -> None:
        char = HTML5_ENTITIES.get(name + ";") or HTML5_ENTITIES.get(name)
        self._run.append(char if char is not None else "&" + name)

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            self._run.append("\ufffd")
        elif 0x80 <= code <= 0x9F:
            self._run.append(bytes([code]).decode("cp1252", errors="ignore") or chr(code))
        else:
            self._run.append(chr(code))

    def _drop(self, data: str) -> None:
        self._end_run()
        self._run.append(data)
        self._end_run(visible=False)

    handle_comment = handle_decl = handle_pi = _drop

    def unknown_decl(self, data: str) -> None:
        if data.upper().startswith("CDATA["):  # bs4 keeps CDATA text, even in hidden tags
            self._end_run()
            self._run.append(data[6:])
            self._end_run(visible=True)
        else:
            self._drop(data)


_FILE_EXT = r"(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)"
_TLD = r"[a-zA-Z0-9.\-]+[.](?:com|co|ru|net|org|edu|gov|it)[\w/-]*\b\/?(?!@)"
_DASHES = ("\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C"
           "\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D")
_PUNCT = r"#®•©™&@·º½¾¿¡§~\)\(\]\[\}\{\|\\\/\*"
_S = re.compile

_BEFORE_HTML = (
    (_S("<person>"), "person"),
    (_S(r"\b((?:https?:(?:\/{1,3}|[a-zA-Z0-9%])|" + _TLD + "))"), ""),  # links
    (_S(r"\b((?:www:(?:\/{1,3}|[a-zA-Z0-9%])|" + _TLD + "))"), ""),
)
_BEFORE_FIX = (
    (_S(r"@[\w\d]+\b"), ""),  # @handles
    (_S("[\u31c0-\u9fff]+"), ""),  # CJK strokes .. unified ideographs (one contiguous block)
    (_S(f"[{_DASHES}]+"), "-"),
    (_S("[`´«»“”¨]"), '"'),
    (_S("[‘’]"), "'"),
    (_S("&quot;?"), ""),
    (_S("&amp"), ""),
    (_S(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"), " "),  # IPv4 addresses
    (_S(r"\d:\d\d\s+$"), ""),
    (_S(r"\\n"), " "),  # a literal backslash-n
    (_S(r"#\d{1,3}\b"), ""),
    (_S(r"#\d{5,}\b"), ""),
    (_S(r"\b\d{6,}\b"), ""),
    (_S(r"[\S]+\." + _FILE_EXT), ""),  # file names
    (_S(r"[\"']{2,}"), '"'),
    (_S(r"[\.]{2,}"), " "),
    (_S(f"[{_PUNCT}]+"), " "),
    (_S(r"\s+\.\s+"), " "),
)
_SEPARATORS = _S(r"[-_]")
_AFTER_FIX = (
    (_S(r"\b[a-zA-Z]{1,3}\d{3,15}\b"), ""),  # letter-digit codes
    (_S(r"\b[a-zA-Z]+\d+[a-zA-Z]+\b"), ""),
    (_S(r"\b\d+[a-zA-Z]+\d+\b"), ""),
    (_S(r"(worldwide\s+)?(free\s+)?shipping"), ""),  # shop boilerplate
    (_S(r"(free\s)?download(\sfree)?"), ""),
    (_S(r"\bclick\b\s(?:for|on)\s\w+"), ""),
    (_S(r"\b" + _FILE_EXT + r"(\simage[s]?)?"), ""),
    (_S(r"\bpage\s+\d+\b"), ""),
    (_S(r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b"), " "),
    (_S(r"\b\d+\.?\d*[xх×]\d+\.?\d*\b"), ""),  # sizes such as 1920x1080
    (_S(r"\b\s+\:\s+"), ": "),
    (_S(r"(\D[,\./])\b"), r"\1 "),
    (_S(r"\s+"), " "),
    (_S(r"^[\"\']([\w\W]+)[\"\']$"), r"\1"),  # whole-caption quotes
    (_S(r"^[\'\_,\-\:;]"), ""),
    (_S(r"[\'\_,\-\:\-\+]$"), ""),
    (_S(r"^\.\S+$"), ""),
)


def _apply(text: str, steps: Iterable[tuple[re.Pattern, str]]) -> str:
    for pattern, replacement in steps:
        text = pattern.sub(replacement, text)
    return text


def _fix_text(text: str) -> str:
    try:
        import ftfy
    except ImportError as e:  # pragma: no cover - ftfy is installed with the pack's verifiers
        raise ImportError("JavisDiT's prompt cleaning needs the `ftfy` package "
                          "(pip install ftfy)") from e
    return ftfy.fix_text(text)


def clean_caption(text: str) -> str:
    """One pass of the caption cleaning JavisDiT was trained with (PixArt's): lower case, no
    links, HTML, handles, CJK, ids, file names or shop boilerplate, unified dashes/quotes."""
    text = unquote_plus(str(text)).strip().lower()
    text = _HtmlText.text(_apply(text, _BEFORE_HTML))
    text = _apply(text, _BEFORE_FIX)
    if len(_SEPARATORS.findall(text)) > 3:  # this-is-a-slug / this_is_a_slug
        text = _SEPARATORS.sub(" ", text)
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    return _apply(text, _AFTER_FIX).strip()


def preprocess_prompt(text: str, aesthetic_score: float | None = AESTHETIC_SCORE) -> str:
    """The prompt as the reference encodes it: `` aesthetic score: 6.5.`` appended (unless the
    prompt already has one), then ``clean_caption`` twice, in that order."""
    if aesthetic_score is not None and "aesthetic score:" not in text:
        text = f"{text} aesthetic score: {aesthetic_score:.1f}."
    return clean_caption(clean_caption(text))


# ---- reading T5 weights ------------------------------------------------------------------------

def _is_encoder_key(key: str) -> bool:
    return key == "shared.weight" or key.startswith("encoder.")


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"T5 text encoder {what} {path} not found (folder {path.parent}). Put there either the "
        f"single file t5xxl_fp16.safetensors ({FILE_URL}) or the transformers folder "
        f"{FOLDER_URL} (config.json and its weights).")


def _refuse_quantised(path: Path, keys: Iterable[str], metadata: dict | None) -> None:
    if (metadata or {}).get("_quantization_metadata") or any(k.endswith(QUANT_MARKERS) for k in keys):
        raise CheckpointError(
            f"{path} is a scaled/quantised fp8 T5 (ComfyUI's mixed-precision format), which this "
            f"loader does not dequantise; use t5xxl_fp16.safetensors instead ({FILE_URL})")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        _refuse_quantised(path, keys, f.metadata())
        if not any(map(_is_encoder_key, keys)):
            raise CheckpointError(f"{path} is not a T5 encoder: no shared.weight or encoder.* "
                                    f"keys (it has {sorted(keys)[:3]}...)")
        return {k: f.get_tensor(k) for k in keys if _is_encoder_key(k)}


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    sd = read_file(path)
    _refuse_quantised(path, sd, None)
    return {k: v for k, v in sd.items() if _is_encoder_key(k)}


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)


def _folder_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The encoder tensors of a transformers folder: one file or the shards its index lists."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            tensors: dict[str, torch.Tensor] = {}
            for shard in shards:
                if not (folder / shard).is_file():
                    raise _missing(folder / shard, f"shard listed in {index.name}")
                tensors.update(_read_weights(folder / shard))
            return tensors
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return _read_weights(folder / name)
    raise _missing(folder / "model.safetensors", "weights (model.safetensors, pytorch_model.bin "
                   "or their sharded index)")


def config_from_state_dict(tensors: dict[str, torch.Tensor], path: Path):
    """A ``T5Config`` read off the shapes: widths, depth, heads (relative-attention table
    (buckets, heads)), feed-forward width and whether it is gated (T5 v1.1) or ReLU (v1.0)."""
    from transformers import T5Config

    bias_key = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    q_key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    embed = tensors.get("shared.weight", tensors.get("encoder.embed_tokens.weight"))
    if embed is None or bias_key not in tensors or q_key not in tensors:
        raise CheckpointError(
            f"{path} is not a T5 encoder in the transformers key layout: it lacks "
            f"shared.weight, {q_key} or {bias_key}")
    ff = "encoder.block.0.layer.1.DenseReluDense."
    gated = ff + "wi_0.weight" in tensors
    if not gated and ff + "wi.weight" not in tensors:
        raise CheckpointError(f"{path}: no feed-forward weights under {ff}")
    buckets, heads = tensors[bias_key].shape
    inner = tensors[q_key].shape[0]
    if inner % heads:
        raise CheckpointError(f"{path}: {q_key} has {inner} rows, not a multiple of the "
                                f"{heads} heads of {bias_key}")
    layers = {int(k.split(".")[2]) for k in tensors if k.startswith("encoder.block.")}
    return T5Config(
        vocab_size=embed.shape[0], d_model=embed.shape[1], d_kv=inner // heads,
        d_ff=tensors[ff + ("wi_0.weight" if gated else "wi.weight")].shape[0],
        num_layers=max(layers) + 1, num_heads=heads, relative_attention_num_buckets=buckets,
        feed_forward_proj="gated-gelu" if gated else "relu", is_encoder_decoder=False,
        use_cache=False, **T5_DEFAULTS)


def build_encoder(config, tensors: dict[str, torch.Tensor], path: Path,
                  dtype: torch.dtype = torch.float32):
    """A ``T5EncoderModel`` of ``config`` holding ``tensors`` (cast to ``dtype``; in float16 the
    ``wo`` projections stay float32 as transformers keeps them). Every missing, unexpected or
    wrongly shaped key is an error naming ``path``."""
    from transformers import T5EncoderModel

    with torch.device("meta"):
        model = T5EncoderModel(config)
    tensors = dict(tensors)
    embed = tensors.setdefault("shared.weight", tensors.get("encoder.embed_tokens.weight"))
    tensors.setdefault("encoder.embed_tokens.weight", embed)
    check_keys(model.state_dict(), tensors, path, f"a T5 encoder of {config.num_layers} layers")
    keep32 = set(model._keep_in_fp32_modules or ()) if dtype == torch.float16 else set()
    state = {k: v.to(torch.float32 if keep32.intersection(k.split(".")) else dtype)
             for k, v in tensors.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def load_tokenizer(tokenizer_dir: Path):
    """The T5 sentencepiece tokenizer of a folder (ComfyUI's ``comfy/text_encoders/t5_tokenizer``
    or a transformers T5 folder with ``spiece.model``/``tokenizer.json``)."""
    from transformers import AutoTokenizer

    tokenizer_dir = Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"T5 tokenizer folder {tokenizer_dir} not found; it ships with "
                                f"ComfyUI (comfy/text_encoders/t5_tokenizer) and with {FOLDER_URL}")
    return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)


# ---- the encoder -------------------------------------------------------------------------------

class T5TextEncoder:
    """T5 as JavisDiT calls it: ``max_length`` tokens (eos included), padded with ``<pad>``,
    the last hidden state and the 0/1 attention mask."""

    def __init__(self, model, tokenizer, max_length: int = MAX_TOKENS) -> None:
        if len(tokenizer) > model.config.vocab_size:
            raise CheckpointError(f"the tokenizer has {len(tokenizer)} tokens, more than the "
                                    f"{model.config.vocab_size} embeddings of the T5 weights")
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    @property
    def dim(self) -> int:
        """The caption width the DiT's ``y_embedder`` expects (4096 for T5 XXL)."""
        return self.model.config.d_model

    @property
    def device(self) -> torch.device:
        return self.model.shared.weight.device

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask), both (B, max_length) int64, as the reference's tokenizer call gives
        them. A prompt longer than ``max_length`` tokens keeps its first ``max_length - 1`` and
        the eos, with a warning saying how many were dropped."""
        prompts = list(prompts)
        full = self.tokenizer(prompts, add_special_tokens=True, verbose=False)["input_ids"]
        for i, ids in enumerate(full):
            if len(ids) > self.max_length:
                warnings.warn(f"prompt {i} is {len(ids)} T5 tokens long; JavisDiT reads "
                              f"{self.max_length}, so the last {len(ids) - self.max_length} are "
                              f"dropped", stacklevel=3)
        out = self.tokenizer(prompts, max_length=self.max_length, padding="max_length",
                             truncation=True, return_attention_mask=True,
                             add_special_tokens=True, return_tensors="pt")
        return out["input_ids"], out["attention_mask"]

    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """y (B, 1, max_length, dim) in the model's dtype and mask (B, max_length) int64, both on
        the model's device. ``prompts`` are used as given: clean them with ``preprocess_prompt``."""
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.no_grad():
            y = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return y[:, None], mask


def load_t5(path: Path, tokenizer_dir: Path, dtype: torch.dtype = torch.float32) -> T5TextEncoder:
    """T5 from a single ``.safetensors`` file (ComfyUI's ``models/text_encoders`` layout,
    architecture read off the shapes) or a transformers folder (``config.json`` + weights)."""
    from transformers import T5Config

    path = Path(path)
    tokenizer = load_tokenizer(tokenizer_dir)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise _missing(path / "config.json", "config")
        tensors = _folder_weights(path)
        config = T5Config.from_pretrained(str(path), local_files_only=True)
    elif path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path}: a single T5 file must be .safetensors ({FILE_URL})")
        tensors = _read_safetensors(path)
        config = config_from_state_dict(tensors, path)
    else:
        raise _missing(path, "file")
    return T5TextEncoder(build_encoder(config, tensors, path, dtype), tokenizer)
