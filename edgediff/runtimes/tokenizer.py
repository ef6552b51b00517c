"""Prompt -> fixed-length token ids with the `tokenizers` runtime (the bundle's tokenizer.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


class PromptTokenizer:
    """Truncates and pads every prompt to the text encoder's fixed length, as diffusers pipelines do."""

    def __init__(self, tokenizer: Tokenizer, max_length: int, pad_id: int) -> None:
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self.max_length = max_length
        self.pad_id = pad_id

    @classmethod
    def from_file(cls, tokenizer_file: Path, max_length: int, pad_id: int) -> PromptTokenizer:
        return cls(Tokenizer.from_file(str(tokenizer_file)), max_length, pad_id)

    @classmethod
    def from_json(cls, document: str, max_length: int, pad_id: int) -> PromptTokenizer:
        return cls(Tokenizer.from_str(document), max_length, pad_id)

    def __call__(self, prompt: str) -> np.ndarray:
        ids = self._tok.encode(prompt).ids[: self.max_length]
        padded = np.full((1, self.max_length), self.pad_id, dtype=np.int64)
        padded[0, : len(ids)] = ids
        return padded
