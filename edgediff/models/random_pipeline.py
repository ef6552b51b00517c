"""Random-weight ``config:`` architectures as stock diffusers pipeline folders, and peer-ready copies.

Benchmarks compare edgediff bundles with the exporters a user would reach for instead (Optimum's
ONNX Runtime and OpenVINO pipelines). Those tools read a diffusers folder, nothing else, so
``write_random_pipeline("config:sd-turbo", out)`` writes one holding exactly the weights edgediff
exports for that reference: both sides then time the same network. Folders that already exist
(the zoo models) go through ``prepare_peer_folder`` instead, which only makes their weights
loadable by the peers' older transformers.

Stock loaders want a CLIP tokenizer next to a CLIP text encoder (``CLIPTokenizer`` reads
``vocab.json`` + ``merges.txt``; OpenVINO's tokenizer conversion keys on the class). Random weights
give tokens no meaning, so a byte-level BPE of the encoder's vocabulary size serves: the 512 byte
tokens CLIP starts with, filler merges over letters and digits, and the two specials last, as in
OpenAI's vocabulary (49408 = 512 + 48894 merges + 2). Prompts thus map to other ids than edgediff's
word-level placeholder tokenizer gives them; latency and export behaviour do not depend on that.
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgediff.errors import ModelLoadError

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
BYTE_TOKENS = 512  # CLIP's vocabulary opens with each byte's character, then each with the word-end mark
WORD_END = "</w>"
# Matches CLIP's pre-tokenizer: special tokens, contractions, letter runs, single digits, punctuation runs.
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# Wrapper attribute holding the diffusers/transformers module (edgediff.models.wrappers).
UNWRAP = {"text_encoder": "encoder", "denoiser": "model", "vae_decoder": "vae"}
PIPELINE_CLASSES = {"unet": "StableDiffusionPipeline", "pixart": "PixArtAlphaPipeline", "dit": "DiTPipeline"}


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's printable stand-in character for each byte, in byte order (as their vocabularies list them)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    extra = 0
    chars: dict[int, str] = {}
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    # CLIP orders the printable bytes first, then the remapped ones.
    return [chars[b] for b in printable] + [chars[b] for b in range(256) if b not in printable]


def _filler_merges() -> Iterator[tuple[str, str]]:
    """Valid BPE merges, shortest first: each joins an existing token with one more letter or digit."""
    alphabet = string.ascii_lowercase + string.digits
    level = list(alphabet)
    while True:
        grown: list[str] = []
        for prefix in level:
            for ch in alphabet:
                yield prefix, ch + WORD_END
                yield prefix, ch
                grown.append(prefix + ch)
        level = grown


def clip_vocab(vocab_size: int) -> tuple[dict[str, int], list[str]]:
    """A byte-level CLIP vocabulary of exactly ``vocab_size`` tokens and the merges that build it."""
    if vocab_size < BYTE_TOKENS + 2:
        raise ModelLoadError(f"a CLIP tokenizer needs at least {BYTE_TOKENS + 2} tokens, the text encoder has {vocab_size}")
    base = _bytes_to_unicode()
    tokens = base + [c + WORD_END for c in base]
    merges: list[str] = []
    for left, right in _filler_merges():
        if len(tokens) == vocab_size - 2:
            break
        merges.append(f"{left} {right}")
        tokens.append(left + right)
    tokens += [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def _clip_tokenizer_json(vocab: dict[str, int], merges: list[str]) -> str:
    """The fast form of the same tokenizer, built as transformers' CLIP converter builds it."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(
        BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], continuing_subword_prefix="",
            end_of_word_suffix=WORD_END, fuse_unk=False, unk_token=EOS)
    )
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing((EOS, vocab[EOS]), (BOS, vocab[BOS]), trim_offsets=False,
                                                      add_prefix_space=False)
    tok.add_special_tokens([BOS, EOS])
    return tok.to_str()


def write_clip_tokenizer(folder: Path, vocab_size: int, max_length: int) -> None:
    """vocab.json, merges.txt and tokenizer.json of a CLIP tokenizer, loadable offline by CLIPTokenizer(Fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab(vocab_size)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    # The slow tokenizer skips the first line of merges.txt (OpenAI's version header).
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer.json").write_text(_clip_tokenizer_json(vocab, merges))
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True,
              "clean_up_tokenization_spaces": False, **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def write_word_tokenizer(folder: Path, tokenizer_json: str, max_length: int) -> None:
    """Non-CLIP encoders (T5) keep edgediff's placeholder word-level tokenizer, as a PreTrainedTokenizerFast.

    Written by hand rather than by ``save_pretrained``: transformers 5 records its own class name
    (``TokenizersBackend``), which the peers' transformers 4 cannot load.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tokenizer_json)
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": "<unk>", "pad_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length, **specials}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def _write_tokenizer(folder: Path, model: Any, text_encoder: Any) -> str:
    """The tokenizer files for ``text_encoder``; returns the transformers class that loads them."""
    max_length = model.geometry.text_max_length
    if type(text_encoder).__name__ == "CLIPTextModel":
        write_clip_tokenizer(folder, int(text_encoder.config.vocab_size), max_length)
        return "CLIPTokenizer"
    write_word_tokenizer(folder, model.tokenizer_json, max_length)
    return "PreTrainedTokenizerFast"


def _component(model: Any, name: str) -> Any:
    return getattr(model.build_component(name), UNWRAP[name])


def _pipeline(model: Any) -> Any:
    """The stock diffusers pipeline object over the model's own modules (same seeds, same weights)."""
    import diffusers

    scheduler = getattr(diffusers, model.scheduler_class).from_config(model.scheduler_config)
    vae = _component(model, "vae_decoder")
    denoiser = _component(model, "denoiser")
    cls = getattr(diffusers, PIPELINE_CLASSES[model.family])
    if model.family == "dit":
        return cls(transformer=denoiser, vae=vae, scheduler=scheduler)
    text_encoder = _component(model, "text_encoder")
    # No tokenizer object: write_random_pipeline writes its files (see _write_tokenizer), which
    # saving one through transformers 5 would make unreadable to transformers 4.
    if model.family == "unet":
        return cls(vae=vae, text_encoder=text_encoder, tokenizer=None, unet=denoiser, scheduler=scheduler,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return cls(tokenizer=None, text_encoder=text_encoder, vae=vae, transformer=denoiser, scheduler=scheduler)


def write_random_pipeline(model_ref: str, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``model_ref`` (``config:NAME``; any ``load_model`` reference) as a diffusers folder at ``out``.

    The folder appears whole or not at all (written beside ``out``, then renamed), so a benchmark
    interrupted mid-write never finds a half folder it would take for a model. An existing ``out``
    is kept as is unless ``overwrite``.
    """
    from edgediff.models import load_model

    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        if not (out / "model_index.json").is_file():
            raise ModelLoadError(f"{out} exists and is not a diffusers pipeline folder; remove it or pick another path")
        return out
    model = load_model(model_ref)
    pipe = _pipeline(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        if getattr(pipe, "text_encoder", None) is not None:
            index = json.loads((tmp / "model_index.json").read_text())
            index["tokenizer"] = ["transformers", _write_tokenizer(tmp / "tokenizer", model, pipe.text_encoder)]
            (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
        portable_weights(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def portable_weights(folder: Path) -> None:
    """Rewrite a pipeline folder's weights so older transformers/diffusers releases load them as saved.

    transformers 5 saves CLIPTextModel without the ``text_model.`` prefix that 4.x expects (4.x then
    initialises the encoder at random, with a warning), and reads a config's ``dtype`` as the dtype to
    load in; 5.x reads the prefixed names too. Float tensors become fp32 because edgediff loads every
    component in fp32, and the peers must time the same network.
    """
    import torch
    from safetensors.torch import load_file, save_file

    for config_path in folder.glob("*/config.json"):
        config = json.loads(config_path.read_text())
        prefix = "text_model." if config.get("architectures") == ["CLIPTextModel"] else ""
        for key in ("dtype", "torch_dtype"):
            if key in config:
                config[key] = "float32"
        config_path.write_text(json.dumps(config, indent=2))
        for weights in config_path.parent.glob("*.safetensors"):
            tensors = load_file(str(weights))
            fixed = {
                (k if k.startswith(prefix) else prefix + k): (v.float() if v.is_floating_point() else v)
                for k, v in tensors.items()
            }
            if any(v.dtype != torch.float32 for v in tensors.values() if v.is_floating_point()) or fixed.keys() != tensors.keys():
                save_file(fixed, str(weights), metadata={"format": "pt"})


def prepare_peer_folder(src: Path, out: Path) -> Path:
    """A copy of diffusers folder ``src`` at ``out`` that the peers' pinned releases load as edgediff does.

    The zoo models were saved by transformers 5 in fp16; see ``portable_weights``. Their
    word-level tokenizer stays: Optimum loads the tokenizer class model_index.json names.
    An existing ``out`` is reused.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not (src / "model_index.json").is_file():
        raise ModelLoadError(f"{src} is not a diffusers pipeline folder (no model_index.json)")
    if (out / "model_index.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        portable_weights(tmp)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
