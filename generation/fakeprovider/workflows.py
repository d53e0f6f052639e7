"""Small API-format ComfyUI workflows with Scene Studio's placeholders, for the fake and for tests."""

from __future__ import annotations

import copy

_BASE = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1216, "height": 832, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, watermark", "clip": ["4", 1]}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": "{{seed}}",
            "steps": 20,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "scenestudio", "images": ["8", 0]}},
}


def text_workflow() -> dict:
    """Prompt and seed only."""
    return copy.deepcopy(_BASE)


def reference_workflow(references: int = 1) -> dict:
    """One LoadImage node per reference, feeding nothing a real graph would need: the fake only checks
    that each image was uploaded, which is what the client is responsible for."""
    workflow = text_workflow()
    for index in range(1, references + 1):
        placeholder = "{{reference}}" if index == 1 else f"{{{{reference_{index}}}}}"
        workflow[f"10{index}"] = {"class_type": "LoadImage", "inputs": {"image": placeholder}}
    return workflow
