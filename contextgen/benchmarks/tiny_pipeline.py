"""A tiny, randomly initialised Qwen-Image pipeline built from configs only (nothing is
downloaded), for the generator benchmark and the tests: it exercises the real `from_pretrained`
load path and the pipeline cache in seconds on a CPU.

The tokenizer is a byte-level BPE vocabulary built here (one token per byte, plus Qwen's
special tokens), wrapped as transformers' `Qwen2Tokenizer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    QwenImageEditPlusPipeline,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
)
from transformers.tokenization_utils_base import AddedToken

QWEN_SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def _byte_alphabet() -> list[str]:
    """The 256 printable characters GPT-2 style byte-level BPE uses for raw bytes."""
    ranges = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    ranges += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(ranges), 0
    for b in range(256):
        if b not in ranges:
            ranges.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def tiny_qwen_tokenizer() -> Qwen2Tokenizer:
    """A byte-level Qwen2 tokenizer with the chat/vision special tokens, built offline."""
    vocab = {"<|endoftext|>": 0}
    for ch in _byte_alphabet():
        vocab[ch] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in QWEN_SPECIAL_TOKENS]}
    )
    return tokenizer


def _tiny_qwen_components(seed: int) -> dict[str, Any]:
    """Transformer, VAE, text encoder (with a tiny vision tower), scheduler and tokenizer."""
    tokenizer = tiny_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6,
        z_dim=z_dim,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 2048,
            "bos_token_id": 0,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": 0,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    return {
        "transformer": transformer,
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": Qwen2_5_VLForConditionalGeneration(config).eval(),
        "tokenizer": tokenizer,
    }


def tiny_qwen_image_pipeline(seed: int = 0) -> QwenImagePipeline:
    """A random `QwenImagePipeline` small enough to run 2 steps at 32x32 in seconds on CPU."""
    return QwenImagePipeline(**_tiny_qwen_components(seed))


def save_tiny_qwen_image_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny Qwen-Image pipeline, `save_pretrained` it into `folder`, return the folder."""
    path = Path(folder)
    tiny_qwen_image_pipeline(seed).save_pretrained(path)
    return path


def tiny_qwen_image_edit_plus_pipeline(seed: int = 0) -> QwenImageEditPlusPipeline:
    """A random `QwenImageEditPlusPipeline` (Qwen-Image-Edit-2509's class: several input images)
    with the real `Qwen2VLProcessor`. The processor's video half needs torchvision."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    components = _tiny_qwen_components(seed)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=components["tokenizer"],
        video_processor=Qwen2VLVideoProcessor(),
    )
    return QwenImageEditPlusPipeline(processor=processor, **components)


def save_tiny_qwen_image_edit_plus_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny edit pipeline, `save_pretrained` it into `folder`, return the folder."""
    path = Path(folder)
    tiny_qwen_image_edit_plus_pipeline(seed).save_pretrained(path)
    return path
