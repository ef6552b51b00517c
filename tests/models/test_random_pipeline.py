"""Random ``config:`` architectures as stock diffusers folders: loadable, same weights, CLIP tokenizer, atomic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from edgediff.models import load_model
from edgediff.models.random_pipeline import clip_vocab, prepare_peer_folder, write_random_pipeline

TINY = "config:tiny-sd"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_pipeline(TINY, tmp_path_factory.mktemp("random") / "tiny-sd")


def test_written_folder_generates_an_image_with_stock_diffusers(tiny_folder: Path) -> None:
    import diffusers

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(tiny_folder))
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"  # the config's scheduler, not a default
    image = pipe("a red circle", num_inference_steps=2, height=32, width=32, guidance_scale=5.0,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert image.shape == (32, 32, 3) and float(image.std()) > 0


def test_written_weights_are_the_edgediff_models(tiny_folder: Path) -> None:
    import diffusers
    from transformers import CLIPTextModel

    model = load_model(TINY)
    pairs = [
        (model.build_component("denoiser").model, diffusers.UNet2DConditionModel.from_pretrained(str(tiny_folder / "unet"))),
        (model.build_component("vae_decoder").vae, diffusers.AutoencoderKL.from_pretrained(str(tiny_folder / "vae"))),
        (model.build_component("text_encoder").encoder, CLIPTextModel.from_pretrained(str(tiny_folder / "text_encoder"))),
    ]
    for ours, written in pairs:
        theirs = written.state_dict()
        assert ours.state_dict().keys() == theirs.keys()
        for name, tensor in ours.state_dict().items():
            assert torch.equal(tensor, theirs[name]), name


def test_text_encoder_weights_carry_the_prefix_transformers_4_reads(tiny_folder: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(tiny_folder / "text_encoder" / "model.safetensors"), "pt") as f:
        assert all(k.startswith("text_model.") for k in f.keys())


def test_tokenizer_is_a_clip_bpe_of_the_encoder_vocabulary(tiny_folder: Path, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    vocab_size = json.loads((tiny_folder / "text_encoder" / "config.json").read_text())["vocab_size"]
    fast = CLIPTokenizer.from_pretrained(str(tiny_folder / "tokenizer"))
    # The same tokenizer rebuilt from vocab.json + merges.txt alone (what transformers 4's slow class reads).
    bare = tmp_path / "bare"
    shutil.copytree(tiny_folder / "tokenizer", bare)
    (bare / "tokenizer.json").unlink()
    from_files = CLIPTokenizer.from_pretrained(str(bare))
    assert len(fast) == vocab_size
    for prompt in ("a red circle above a blue square", "Zebra-crossing, 42 ÄÖ!"):
        ids = fast(prompt).input_ids
        assert ids == from_files(prompt).input_ids
        assert ids[0] == vocab_size - 2 and ids[-1] == vocab_size - 1  # <|startoftext|> ... <|endoftext|>
        assert max(ids) < vocab_size


def test_clip_vocab_matches_openai_layout_at_full_size() -> None:
    vocab, merges = clip_vocab(49408)
    assert len(vocab) == 49408 and len(merges) == 48894  # OpenAI CLIP: 512 byte tokens + 48894 merges + 2
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    for merge in merges[:2000]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab


def test_existing_folder_is_reused_and_a_failed_write_leaves_nothing(tiny_folder: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    before = (tiny_folder / "model_index.json").stat().st_mtime_ns
    assert write_random_pipeline(TINY, tiny_folder) == tiny_folder
    assert (tiny_folder / "model_index.json").stat().st_mtime_ns == before

    import diffusers

    def broken(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        (Path(args[0]) / "half-written").write_text("x")
        raise OSError("disk full")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        write_random_pipeline(TINY, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_peer_copy_of_a_zoo_model_is_fp32_with_prefixed_text_encoder(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from edgediff.zoo.paths import zoo_path

    src = zoo_path("zoo:shapes-unet")
    out = prepare_peer_folder(src, tmp_path / "shapes-unet")
    original = load_file(str(src / "text_encoder" / "model.safetensors"))
    copied = load_file(str(out / "text_encoder" / "model.safetensors"))
    assert copied.keys() == {f"text_model.{k}" for k in original}
    for key, tensor in original.items():
        assert copied[f"text_model.{key}"].dtype == torch.float32
        assert torch.equal(copied[f"text_model.{key}"], tensor.float())
    unet = load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(t.dtype == torch.float32 for t in unet.values() if t.is_floating_point())
    assert json.loads((out / "text_encoder" / "config.json").read_text())["dtype"] == "float32"
    assert (src / "text_encoder" / "model.safetensors").read_bytes() != (out / "text_encoder" / "model.safetensors").read_bytes()
