"""Tokenizers as one portable ``tokenizer.json`` (the `tokenizers` library format).

Bundles always carry a ``tokenizer.json`` so device apps need only the `tokenizers` runtime (or any
port of it). CLIP's vocab.json/merges.txt and other slow formats are converted here, at build time.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgediff.errors import ModelLoadError

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>", "<unk>")


def tokenizer_json_from_folder(folder: Path) -> str:
    """The tokenizer of a diffusers ``tokenizer/`` folder as a tokenizer.json document."""
    fast = folder / "tokenizer.json"
    if fast.is_file():
        return fast.read_text()
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder), use_fast=True, local_files_only=True)
    except Exception as exc:  # transformers raises many types here; all mean "cannot read this tokenizer"
        raise ModelLoadError(f"cannot read the tokenizer in {folder}: {exc}; add a tokenizer.json there") from exc
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(f"tokenizer in {folder} has no fast (tokenizers) form; add a tokenizer.json there")
    return backend.to_str()


def tokenizer_max_length(folder: Path, fallback: int) -> int:
    config = folder / "tokenizer_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("model_max_length")
        if isinstance(value, int) and 0 < value < 100_000:
            return value
    return fallback


def placeholder_word_tokenizer(vocab_size: int) -> str:
    """A word-level tokenizer for random-weight ``config:`` architectures.

    Their weights carry no meaning, so any prompt-to-id mapping of the right vocabulary size serves
    latency and export work; words hash into the vocabulary so every prompt tokenizes.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for i in range(len(vocab), vocab_size):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)]
    )
    return tok.to_str()


def pad_token_id(tokenizer_json: str, folder: Path | None) -> int:
    """The id prompts are padded with: the folder's declared pad token, else end-of-text (CLIP's habit)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    candidates: list[str] = []
    if folder is not None and (folder / "tokenizer_config.json").is_file():
        pad = json.loads((folder / "tokenizer_config.json").read_text()).get("pad_token")
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str):
            candidates.append(pad)
    candidates += ["<|endoftext|>", "<pad>", "[PAD]", "</s>"]
    for token in candidates:
        token_id = tok.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0
