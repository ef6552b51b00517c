"""The word-level tokenizer of the shapes text encoder, as a standard ``tokenizer.json``.

The grammar has ~30 words, so a WordLevel model over exactly those words (plus pad/unk/bos/eos)
is the whole tokenizer: no merges to learn, and any runtime with the ``tokenizers`` library (or a
20-line reimplementation) reads it. Prompts are lower-cased, split on whitespace and punctuation,
wrapped in bos/eos and padded with the pad token to ``MAX_LENGTH``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgediff.zoo.grammar import vocabulary

PAD, UNK, BOS, EOS = "<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>"
# Ids 0..3 in this order. EOS is deliberately not id 2: CLIPTextModel treats eos_token_id == 2 as a
# legacy config and pools at argmax(input_ids) instead of at the first eos.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
MAX_LENGTH = 24  # the longest grammar prompt is 21 words + bos + eos


def vocab() -> dict[str, int]:
    tokens = list(SPECIAL_TOKENS) + vocabulary()
    return {tok: i for i, tok in enumerate(tokens)}


def build_tokenizer():  # -> tokenizers.Tokenizer
    """The ``tokenizers`` object; imported lazily so importing the zoo stays light."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    v = vocab()
    tok = Tokenizer(WordLevel(vocab=v, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, v[BOS]), (EOS, v[EOS])]
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.enable_padding(pad_id=v[PAD], pad_token=PAD, length=MAX_LENGTH)
    tok.enable_truncation(max_length=MAX_LENGTH)
    return tok


def write_tokenizer_folder(folder: Path) -> None:
    """``tokenizer.json`` plus the ``tokenizer_config.json`` that transformers' fast tokenizer reads."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    # The saved file carries no padding/truncation: transformers and runtimes pad to model_max_length.
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_LENGTH,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": UNK,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def encode(prompts: list[str]) -> np.ndarray:
    """Token ids (N, MAX_LENGTH) int64, padded with the pad id: what the text encoder sees."""
    tok = build_tokenizer()
    return np.asarray([e.ids for e in tok.encode_batch(list(prompts))], dtype=np.int64)
