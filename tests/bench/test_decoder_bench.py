"""tools.bench.decoder: both decoders read the same latents, and the table says what was measured."""

from __future__ import annotations

from tools.bench import decoder


def test_distilled_decoder_is_scored_against_the_source_decoder_on_the_same_latents() -> None:
    from edgediff.eval import load_prompt_set

    prompts = list(load_prompt_set("v1", 4))
    cell = decoder.measure("zoo:shapes-unet", 2, prompts, 64, "tiny")
    assert cell["gflop"]["distilled"] < 0.5 * cell["gflop"]["source"]
    # same latents: close images (random latents through two different decoders would be ~10 dB apart)
    assert cell["psnr_vs_source"] > 25 and 0 <= cell["adherence_distilled"] <= 1
    table = decoder.markdown({"decoder": "tiny", "prompts": 4, "offset": 0, "seed": 64, "cells": [cell],
                              "command": "python -m tools.bench.decoder"})
    assert "| zoo:shapes-unet | 2 |" in table
