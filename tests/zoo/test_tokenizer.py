from __future__ import annotations

import numpy as np
import pytest

from edgediff.zoo.paths import zoo_names, zoo_path
from edgediff.zoo.tokenizer import MAX_LENGTH, encode, vocab


def test_prompt_is_wrapped_in_bos_eos_and_padded_with_pad_id():
    v = vocab()
    ids = encode(["a small red star"])[0]
    assert ids.shape == (MAX_LENGTH,) == (24,)
    assert list(ids[:6]) == [v["<|startoftext|>"], v["a"], v["small"], v["red"], v["star"], v["<|endoftext|>"]]
    assert (ids[6:] == v["<|pad|>"]).all() and v["<|pad|>"] == 0


def test_empty_prompt_is_bos_eos_only():
    assert list(encode([""])[0][:3]) == [2, 3, 0]


def test_case_and_punctuation_do_not_change_known_words():
    a, b = encode(["A Small RED star"]), encode(["a small red star"])
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", zoo_names())
def test_shipped_tokenizer_json_encodes_like_the_builder(name):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(zoo_path(name) / "tokenizer" / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="<|pad|>", length=MAX_LENGTH)
    prompt = "a large cyan ring at the bottom left and a small pink cross on the right on a black background"
    assert tok.encode(prompt).ids == encode([prompt])[0].tolist()
