"""JavisDiT's text encoder on a tiny random T5 in ComfyUI's single-file layout and in a
transformers folder, loaded by the real loader with ComfyUI's shipped T5 tokenizer. The
embeddings are checked against transformers' own ``T5EncoderModel.from_pretrained`` fed by the
tokenizer called as the reference calls it; also the 300-token padding/mask, truncation, the
reference's prompt cleaning (expected strings taken from running the reference's
``text_preprocessing`` with BeautifulSoup installed) and bad files."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from comfyui_avits.core.checkpoints import CheckpointError
from comfyui_avits.generators.javisdit.text import (FILE_URL, FOLDER_URL, MAX_TOKENS,
                                                    _HtmlText, clean_caption,
                                                    load_t5, preprocess_prompt)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tiny_t5  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TOKENIZER = Path(sys.prefix).resolve().parent / "ComfyUI" / "comfy" / "text_encoders" / "t5_tokenizer"
PROMPTS = ["a dog barks at a red car. aesthetic score: 6.5.",
           "thunder rolls over a dark city at night while rain falls. aesthetic score: 6.5."]


@pytest.fixture(scope="module", autouse=True)
def _tokenizer_present():
    assert (TOKENIZER / "tokenizer.json").is_file(), f"ComfyUI's T5 tokenizer not at {TOKENIZER}"


@pytest.fixture(scope="module")
def single_file(tmp_path_factory) -> Path:
    return tiny_t5.write(tmp_path_factory.mktemp("models"))["t5"]


@pytest.fixture(scope="module")
def folder(single_file, tmp_path_factory) -> Path:
    """The same weights saved by transformers itself (config.json + model.safetensors)."""
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(**tiny_t5.TINY, feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    model = T5EncoderModel(cfg)
    sd = {k: v.float() for k, v in load_file(str(single_file)).items()}
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    model.load_state_dict(sd, strict=True)
    out = tmp_path_factory.mktemp("t5-folder")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def encoder(single_file):
    return load_t5(single_file, TOKENIZER)


def reference(folder: Path, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers loading the folder itself, and the tokenizer called with the reference's
    arguments (T5Embedder.get_text_embeddings)."""
    from transformers import AutoTokenizer, T5EncoderModel

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER), local_files_only=True)
    model = T5EncoderModel.from_pretrained(str(folder), local_files_only=True).eval()
    t = tok(prompts, max_length=300, padding="max_length", truncation=True,
            return_attention_mask=True, add_special_tokens=True, return_tensors="pt")
    with torch.no_grad():
        y = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"])["last_hidden_state"]
    return y, t["attention_mask"]


# ---- loading -----------------------------------------------------------------------------------

def test_the_architecture_is_read_off_the_single_file(encoder, single_file):
    cfg = encoder.model.config
    assert (cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.d_kv, cfg.d_ff, cfg.vocab_size) == \
        (32, 2, 2, 16, 64, 32128)
    assert cfg.is_gated_act and cfg.dense_act_fn == "gelu_new" and encoder.dim == 32
    keys = set(load_file(str(single_file)))  # the layout ComfyUI's loader detects T5 by
    assert "shared.weight" in keys and "encoder.block.0.layer.0.SelfAttention.k.weight" in keys
    assert "encoder.block.1.layer.1.DenseReluDense.wi_1.weight" in keys
    assert not encoder.model.training
    assert next(encoder.model.parameters()).dtype == torch.float32  # cast from the fp16 file


def test_encode_equals_transformers_on_both_layouts(encoder, folder):
    y_ref, mask_ref = reference(folder, PROMPTS)
    for enc in (encoder, load_t5(folder, TOKENIZER)):
        y, mask = enc.encode(PROMPTS)
        assert y.shape == (2, 1, MAX_TOKENS, 32) and y.dtype == torch.float32
        assert mask.shape == (2, MAX_TOKENS) and mask.dtype == torch.int64
        assert torch.equal(mask, mask_ref)
        torch.testing.assert_close(y[:, 0], y_ref, rtol=0, atol=1e-6)


def test_half_precision(single_file, encoder):
    y32, _ = encoder.encode(PROMPTS)
    for dtype in (torch.bfloat16, torch.float16):
        enc = load_t5(single_file, TOKENIZER, dtype=dtype)
        wo = enc.model.encoder.block[0].layer[1].DenseReluDense.wo.weight
        assert enc.model.shared.weight.dtype == dtype
        assert wo.dtype == (torch.float32 if dtype == torch.float16 else dtype)  # as transformers keeps it
        y, _ = enc.encode(PROMPTS)
        torch.testing.assert_close(y.float(), y32, rtol=0.05, atol=0.1)


def test_padding_and_mask(encoder):
    ids, mask = encoder.tokenize(PROMPTS)
    for row_ids, row_mask, text in zip(ids, mask, PROMPTS):
        n = len(encoder.tokenizer(text)["input_ids"])
        assert n < 40 and row_mask[:n].eq(1).all() and row_mask[n:].eq(0).all()
        assert row_ids[n - 1] == 1 and row_ids[n:].eq(0).all()  # eos, then <pad>
    # the valid positions do not depend on the batch the prompt is padded in
    y1, _ = encoder.encode(PROMPTS[:1])
    y2, _ = encoder.encode(PROMPTS)
    n = int(mask[0].sum())
    torch.testing.assert_close(y1[0, 0, :n], y2[0, 0, :n], rtol=0, atol=1e-6)
    assert not torch.allclose(y2[0, 0, :n], y2[1, 0, :n])


def test_a_long_prompt_is_truncated_with_a_warning(encoder):
    long = " ".join(["river"] * 400)
    full = encoder.tokenizer(long)["input_ids"]
    assert len(full) == 401
    with pytest.warns(UserWarning, match="401 T5 tokens.*last 101 are dropped"):
        y, mask = encoder.encode([long, PROMPTS[0]])
    with pytest.warns(UserWarning, match="prompt 0 is 401"):
        ids, _ = encoder.tokenize([long])
    assert y.shape == (2, 1, 300, 32) and mask[0].eq(1).all()
    assert ids[0, :299].tolist() == full[:299] and ids[0, 299] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.tokenize([" ".join(["river"] * 299)])  # 299 + eos = 300: nothing dropped
    with pytest.warns(UserWarning, match="301 T5 tokens.*last 1 are dropped"):
        encoder.tokenize([" ".join(["river"] * 300)])


def test_comfyui_tokenizer_is_the_t5_v1_1_vocabulary(encoder):
    """ComfyUI's tokenizer has T5's 32000 sentencepiece pieces + 100 sentinels and ids as the
    raw tokenizer.json gives them (DeepFloyd/t5-v1_1-xxl ships the same vocabulary, unverified
    here: it cannot be downloaded)."""
    from tokenizers import Tokenizer

    tok = encoder.tokenizer
    assert len(tok) == 32100 and (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"]) == [32099, 32000]
    raw = Tokenizer.from_file(str(TOKENIZER / "tokenizer.json"))
    for text in PROMPTS + ["waves crash - seagulls \"call\" 'softly' at dawn", "café 1920 hz"]:
        assert tok(text)["input_ids"] == raw.encode(text).ids
    assert tok(PROMPTS[0])["input_ids"] == [3, 9, 1782, 21696, 7, 44, 3, 9, 1131, 443, 5, 9386,
                                            2604, 10, 3, 17255, 5, 1]


# ---- bad files ---------------------------------------------------------------------------------

def test_missing_files_name_the_file_and_the_published_weights(tmp_path, single_file):
    with pytest.raises(FileNotFoundError, match="t5xxl_fp16.safetensors") as e:
        load_t5(tmp_path / "t5xxl_fp16.safetensors", TOKENIZER)
    assert FILE_URL in str(e.value) and FOLDER_URL in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path / "t5").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_t5(tmp_path / "t5", TOKENIZER)
    with pytest.raises(FileNotFoundError, match="tokenizer folder"):
        load_t5(single_file, tmp_path / "no_tokenizer")


def test_wrong_shapes_and_other_files_say_what_is_wrong(tmp_path, single_file, folder):
    sd = load_file(str(single_file))
    key = "encoder.block.1.layer.0.SelfAttention.v.weight"
    save_file({**sd, key: torch.zeros(16, 32, dtype=torch.float16)}, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match=f"wrong.safetensors.*{key}.*\\(16, 32\\).*\\(32, 32\\)"):
        load_t5(tmp_path / "wrong.safetensors", TOKENIZER)
    short = {k: v for k, v in sd.items() if k != "encoder.final_layer_norm.weight"}
    save_file(short, str(tmp_path / "short.safetensors"))
    with pytest.raises(CheckpointError, match="short.safetensors.*missing.*final_layer_norm"):
        load_t5(tmp_path / "short.safetensors", TOKENIZER)
    save_file({"text_model.embeddings.weight": torch.zeros(4, 4)}, str(tmp_path / "clip.safetensors"))
    with pytest.raises(CheckpointError, match="clip.safetensors is not a T5 encoder"):
        load_t5(tmp_path / "clip.safetensors", TOKENIZER)
    save_file({**sd, "scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)},
              str(tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors"))
    with pytest.raises(CheckpointError, match="scaled.*fp8.*t5xxl_fp16.safetensors"):
        load_t5(tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors", TOKENIZER)
    # a folder whose config.json disagrees with its weights
    bad = tmp_path / "bad-folder"
    bad.mkdir()
    cfg = json.loads((folder / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "d_ff": 128}))
    (bad / "model.safetensors").symlink_to(folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="bad-folder.*DenseReluDense.wi_0.weight.*\\(64, 32\\)"):
        load_t5(bad, TOKENIZER)


def test_embed_tokens_alone_and_a_real_file_is_never_overwritten(tmp_path, single_file, encoder):
    sd = load_file(str(single_file))
    sd["encoder.embed_tokens.weight"] = sd.pop("shared.weight")
    save_file(sd, str(tmp_path / "alias.safetensors"))
    y, _ = load_t5(tmp_path / "alias.safetensors", TOKENIZER).encode(PROMPTS[:1])
    torch.testing.assert_close(y, encoder.encode(PROMPTS[:1])[0], rtol=0, atol=0)
    real = tmp_path / "models" / "text_encoders" / "t5xxl_fp16.safetensors"
    real.parent.mkdir(parents=True)
    with open(real, "wb") as f:
        f.truncate(tiny_t5.REAL_FILE_BYTES + 1)
    with pytest.raises(FileExistsError, match="real T5"):
        tiny_t5.write(tmp_path / "models")
    assert real.stat().st_size == tiny_t5.REAL_FILE_BYTES + 1


# ---- prompt cleaning ---------------------------------------------------------------------------

# (prompt, what the reference's scripts/inference.py encodes), from running the reference's
# append_score_to_prompts(aes=6.5) + text_preprocessing (ftfy + BeautifulSoup 4.15) on them
CLEANED = [
    ("A dog barks at a red car.", "a dog barks at a red car. aesthetic score: 6.5."),
    ("A man plays the GUITAR on stage, crowd cheering!!!",
     "a man plays the guitar on stage, crowd cheering!!! aesthetic score: 6.5."),
    ("Check https://example.com/x?y=1 and www.foo.org now", "check ?y=1 and now aesthetic score: 6.5."),
    ("<p>Rain &amp; thunder</p> over <b>the</b> city &quot;night&quot;",
     'rain thunder over the city "night" aesthetic score: 6.5.'),
    ("Waves crash — seagulls “call” ‘softly’ 東京 at dawn",
     "waves crash - seagulls \"call\" 'softly' at dawn aesthetic score: 6.5."),
    ("this-is-my-cute-cat_video_clip", "this is my cute cat video clip aesthetic score: 6.5."),
    ("IMG_20230101.jpg a bird sings #12 #123456 1234567", "a bird sings aesthetic score: 6.5."),
    ("free shipping! click for details, page 3, jc6640 1920x1080", "! , , aesthetic score: 6.5."),
    ("a+b%20c and @user said hi...wow", "a b c and said hi wow aesthetic score: 6.5."),
    ("<script>var x=1</script>visible<style>p{}</style> text<!-- hidden --> end",
     "visible text end aesthetic score: 6.5."),
    ("x < y and a<b>c</b> &foo; &#65;&#x42; &#150; &#0; caf&eacute;",
     "x < y and ac foo ab - \ufffd café aesthetic score: 6.5."),
    ("<pre>  </pre> <br> </br> a<br/>b <![CDATA[ kept ]]> <template>no</template>",
     "ab kept aesthetic score: 6.5."),
    ("Fireworks explode over a lake at night; people cheer: wow - amazing +",
     "fireworks explode over a lake at night; people cheer: wow - amazing aesthetic score: 6.5."),
    ("ﬁne fullwidth ＡＢＣ mojibake â€™ test", "fine fullwidth abc mojibake † test aesthetic score: 6.5."),
    ("<person> walks 192.168.0.1 \\n next 1:23  ", "person walks next 1:23 aesthetic score: 6.5."),
    ("", "aesthetic score: 6.5."),
]


@pytest.mark.parametrize("prompt, expected", CLEANED)
def test_preprocessing_matches_the_reference(prompt, expected):
    assert preprocess_prompt(prompt) == expected


@pytest.mark.parametrize("prompt, expected", [  # the reference's text_preprocessing alone
    (".hidden", ""), ("'Quoted words'", "quoted words"), (":start, end-", "start, end"),
    ("a cat.and a dog,ok", "a cat. and a dog, ok")])
def test_cleaning_alone_matches_the_reference(prompt, expected):
    assert preprocess_prompt(prompt, aesthetic_score=None) == expected


@pytest.mark.parametrize("markup, text", [  # what BeautifulSoup(markup, "html.parser").text gives
    ("<b>\n \n</b>x<i>  </i><pre> \n </pre>y", "\nx  \n y"),
    ("a<br>b</br>  <br>c", "ab  c"),
    ("<template><b>in</b></template>out<rt>r</rt>&#150;&#129;&amp x&notit;", "out\u2013\x81& x&notit"),
])
def test_html_is_stripped_as_beautifulsoup_does(markup, text):
    assert _HtmlText.text(markup) == text


def test_the_score_is_appended_once_and_before_cleaning():
    assert preprocess_prompt("A cat. Aesthetic score: 5.0.") == "a cat. aesthetic score: 5.0. aesthetic score: 6.5."
    assert preprocess_prompt("a cat aesthetic score: 5.0.") == "a cat aesthetic score: 5.0."
    assert preprocess_prompt("A Cat", aesthetic_score=None) == "a cat"
    assert clean_caption("  Hello   World  ") == "hello world"
