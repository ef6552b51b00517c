"""Architectures and sampling defaults of the shapes zoo, in one place.

Sizes are chosen so each whole pipeline is <= 25 MB in fp16 and a 30-step, CFG 5 generation of a
few images takes seconds on two CPU cores: VAE 2.7 M parameters, text encoder 0.8 M, UNet 5.9 M,
PixArt-style transformer 6.3 M.
"""

from __future__ import annotations

from typing import Any

from edgediff.zoo.tokenizer import MAX_LENGTH, vocab

# 64x64x3 <-> 16x16x4 (two downsamplings), as SD's VAE but three levels instead of four.
VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 128),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=64,
)


def text_encoder_config() -> dict[str, Any]:
    return dict(
        vocab_size=len(vocab()),
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        projection_dim=128,
    )


# SD-style UNet: cross-attention at 16x16 and 8x8, a plain ResNet level at 4x4.
UNET: dict[str, Any] = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(64, 128, 128),
    layers_per_block=1,
    cross_attention_dim=128,
    attention_head_dim=8,
    norm_num_groups=32,
)

# PixArt-alpha-style DiT: 2x2 patches (64 tokens), adaLN-single, cross-attention to the caption.
# out_channels = in_channels: epsilon only, no learned variance.
DIT: dict[str, Any] = dict(
    num_attention_heads=6,
    attention_head_dim=32,
    in_channels=4,
    out_channels=4,
    num_layers=10,
    cross_attention_dim=192,
    sample_size=16,
    patch_size=2,
    caption_channels=128,
    use_additional_conditions=False,
)

# SD's noise schedule and DDIM settings.
SCHEDULER: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
    timestep_spacing="leading",
)

DEFAULTS: dict[str, Any] = {
    "default_steps": 30,
    "default_guidance_scale": 5.0,
    "height": 64,
    "width": 64,
    "family": "shapes",
    "prompt_set": "v1",
}

# Per-model sampling defaults (edgediff.json), from the guidance sweep at the end of training
# (tools/zoo/logs/run4_diffusion_dit_log.json): the DiT adheres best at CFG 3, the UNet is flat
# between 3 and 7.5, so it keeps SD's customary 5.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "shapes-unet": {**DEFAULTS},
    "shapes-dit": {**DEFAULTS, "default_guidance_scale": 3.0},
}
