"""Tiny MONAI bundles in the real bundle format, with made-up weights, for tests.

Each is laid out like the MONAI Model Zoo bundle it stands in for (``configs/metadata.json``,
``configs/inference.json``, ``models/model.pt``, ``LICENSE``) with the same config keys, the
same network classes (SegResNet; RetinaNet over a ResNet with a feature pyramid) and the same
transform chains, at tiny sizes (few filters, coarse spacing, small windows) so the real
loading and inference code runs in a second on a CPU. The weights are a state dict of the
network the config builds. They are never used in a product path: tests install them into a
temporary weights dir through the model registry (``models add``), as a site would register
weights copied in by hand.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.tools.builtin.ct_organ_segmenter import TOTALSEG_LABELS

__all__ = [
    "BUNDLES",
    "TOTALSEG_LABELS",
    "bundle_zip",
    "install_tiny_bundle",
    "make_tiny_bundle",
]


_IMPORTS = ["$import glob", "$import numpy", "$import os"]
_DEVICE = "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"


def _meta(
    name: str, version: str, description: str, inputs: dict[str, Any], outputs: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        **extra,
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": version,
        "changelog": {version: "tiny test bundle"},
        "monai_version": "1.4.0",
        "pytorch_version": "2.4.0",
        "numpy_version": "1.24.4",
        "name": name,
        "task": description,
        "description": f"TINY TEST BUNDLE with made-up weights standing in for {name}: never diagnostic",
        "authors": "copilot tests",
        "copyright": "Copyright (c) the copilot authors",
        "intended_use": "Tests of the loading and inference code only",
        "network_data_format": {"inputs": {"image": inputs}, "outputs": {"pred": outputs}},
    }


def _wholebody() -> tuple[dict[str, Any], dict[str, Any]]:
    channels = {"0": "background", **{str(i): n for i, n in enumerate(TOTALSEG_LABELS, start=1)}}
    meta = _meta(
        "Whole body CT segmentation",
        "0.2.5",
        "TotalSegmentator Segmentation",
        {
            "type": "image",
            "format": "hounsfield",
            "modality": "CT",
            "num_channels": 1,
            "spatial_shape": [96, 96, 96],
            "dtype": "float32",
            "value_range": [0, 1],
            "is_patch_data": True,
            "channel_def": {"0": "image"},
        },
        {
            "type": "image",
            "format": "segmentation",
            "num_channels": 105,
            "spatial_shape": [96, 96, 96],
            "dtype": "float32",
            "value_range": [0, 104],
            "is_patch_data": True,
            "channel_def": channels,
        },
    )
    config = {
        "displayable_configs": {"highres": True, "sw_overlap": 0.25, "sw_batch_size": 1},
        "imports": _IMPORTS,
        "bundle_root": ".",
        "image_key": "image",
        "output_dir": "$@bundle_root + '/eval'",
        "load_pretrain": True,
        "device": _DEVICE,
        "pixdim": "$[4.0, 4.0, 4.0] if @displayable_configs#highres else [6.0, 6.0, 6.0]",
        "modelname": "$'model.pt' if @displayable_configs#highres else 'model_lowres.pt'",
        "network_def": {
            "_target_": "SegResNet",
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 105,
            "init_filters": 8,
            "blocks_down": [1, 1, 1, 1],
            "blocks_up": [1, 1, 1],
            "dropout_prob": 0.2,
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "@image_key"},
                {"_target_": "EnsureTyped", "keys": "@image_key"},
                {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
                {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "@image_key", "pixdim": "@pixdim", "mode": "bilinear"},
                {"_target_": "NormalizeIntensityd", "keys": "@image_key", "nonzero": True},
                {"_target_": "ScaleIntensityd", "keys": "@image_key", "minv": -1.0, "maxv": 1.0},
            ],
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [32, 32, 32],
            "sw_batch_size": "@displayable_configs#sw_batch_size",
            "overlap": "@displayable_configs#sw_overlap",
            "padding_mode": "replicate",
            "mode": "gaussian",
            "device": _DEVICE,
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "@image_key",
                    "nearest_interp": True,
                    "to_tensor": True,
                },
                {
                    "_target_": "SaveImaged",
                    "keys": "pred",
                    "output_dir": "@output_dir",
                    "output_postfix": "trans",
                },
            ],
        },
        "checkpointloader": {
            "_target_": "CheckpointLoader",
            "load_path": "$@bundle_root + '/models/' + @modelname",
            "load_dict": {"model": "@network"},
        },
    }
    return meta, config


def _nodule() -> tuple[dict[str, Any], dict[str, Any]]:
    meta = _meta(
        "Lung nodule CT detection",
        "0.6.8",
        "CT lung nodule detection",
        {
            "type": "image",
            "format": "magnitude",
            "modality": "CT",
            "num_channels": 1,
            "spatial_shape": ["16*n", "16*n", "8*n"],
            "dtype": "float16",
            "value_range": [0, 1],
            "is_patch_data": True,
            "channel_def": {"0": "image"},
        },
        {
            "type": "object",
            "format": "dict",
            "dtype": "float16",
            "num_channels": 1,
            "spatial_shape": ["n", "n", "n"],
            "value_range": [-10000, 10000],
        },
    )
    config = {
        "whether_raw_luna16": False,
        "whether_resampled_luna16": "$(not @whether_raw_luna16)",
        "imports": _IMPORTS,
        "bundle_root": ".",
        "image_key": "image",
        "device": _DEVICE,
        "amp": True,
        "load_pretrain": True,
        "spatial_dims": 3,
        "num_classes": 1,
        "force_sliding_window": False,
        "size_divisible": [16, 16, 8],
        "infer_patch_size": [128, 128, 64],
        "anchor_generator": {
            "_target_": "monai.apps.detection.utils.anchor_utils.AnchorGeneratorWithAnchorShape",
            "feature_map_scales": [1, 2, 4],
            "base_anchor_shapes": [[6, 8, 4], [8, 6, 5], [10, 10, 6]],
        },
        "backbone": "$monai.networks.nets.resnet.ResNet(block='basic', layers=[1, 1, 1, 1], "
        "block_inplanes=[4, 8, 16, 32], spatial_dims=3, n_input_channels=1, conv1_t_stride=[2, 2, 1], "
        "conv1_t_size=[7, 7, 7])",
        "feature_extractor": "$monai.networks.blocks.backbone_fpn_utils.BackboneWithFPN(@backbone, "
        "{'layer1': '0', 'layer2': '1'}, [4, 8], 8, 3, "
        "monai.networks.blocks.feature_pyramid_network.LastLevelMaxPool(3))",
        "network_def": {
            "_target_": "RetinaNet",
            "spatial_dims": "@spatial_dims",
            "num_classes": "@num_classes",
            "num_anchors": 3,
            "feature_extractor": "@feature_extractor",
            "size_divisible": "@size_divisible",
            "use_list_output": False,
        },
        "network": "$@network_def.to(@device)",
        "detector": {
            "_target_": "RetinaNetDetector",
            "network": "@network",
            "anchor_generator": "@anchor_generator",
            "debug": False,
            "spatial_dims": "@spatial_dims",
            "num_classes": "@num_classes",
            "size_divisible": "@size_divisible",
        },
        "detector_ops": [
            "$@detector.set_target_keys(box_key='box', label_key='label')",
            "$@detector.set_box_selector_parameters(score_thresh=0.02,topk_candidates_per_level=100,"
            "nms_thresh=0.22,detections_per_img=30)",
            "$@detector.set_sliding_window_inferer(roi_size=@infer_patch_size,overlap=0.25,sw_batch_size=1,"
            "mode='constant',device='cpu')",
        ],
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "@image_key", "_disabled_": "@whether_raw_luna16"},
                {
                    "_target_": "LoadImaged",
                    "keys": "@image_key",
                    "reader": "itkreader",
                    "affine_lps_to_ras": True,
                    "_disabled_": "@whether_resampled_luna16",
                },
                {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
                {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
                {
                    "_target_": "Spacingd",
                    "keys": "@image_key",
                    "pixdim": [2.0, 2.0, 2.5],
                    "_disabled_": "@whether_resampled_luna16",
                },
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "@image_key",
                    "a_min": -1024.0,
                    "a_max": 300.0,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "@image_key"},
            ],
        },
        "checkpointloader": {
            "_target_": "CheckpointLoader",
            "load_path": "$@bundle_root + '/models/model.pt'",
            "load_dict": {"model": "@network"},
        },
    }
    return meta, config


def _brats() -> tuple[dict[str, Any], dict[str, Any]]:
    meta = _meta(
        "BraTS MRI segmentation",
        "0.5.2",
        "Multimodal Brain Tumor segmentation",
        {
            "type": "image",
            "format": "magnitude",
            "modality": "MR",
            "num_channels": 4,
            "spatial_shape": [240, 240, 160],
            "dtype": "float32",
            "value_range": [0, 1],
            "is_patch_data": False,
            "channel_def": {"0": "T1c", "1": "T1", "2": "T2", "3": "FLAIR"},
        },
        {
            "type": "image",
            "format": "segmentation",
            "num_channels": 3,
            "spatial_shape": [240, 240, 160],
            "dtype": "float32",
            "value_range": [0, 1],
            "is_patch_data": False,
            "channel_def": {"0": "TC", "1": "WT", "2": "ET"},
        },
        image_classes="4 channel data, T1c, T1, T2, FLAIR at 4x4x4 mm",
        label_classes="3 channel data, channel 0 for Tumor core, channel 1 for Whole tumor, "
        "channel 2 for Enhancing tumor",
    )
    config = {
        "imports": _IMPORTS,
        "bundle_root": ".",
        "image_key": "image",
        "device": _DEVICE,
        "amp": True,
        "load_pretrain": True,
        "network_def": {
            "_target_": "SegResNet",
            "blocks_down": [1, 1, 1, 1],
            "blocks_up": [1, 1, 1],
            "init_filters": 8,
            "in_channels": 4,
            "out_channels": 3,
            "dropout_prob": 0.2,
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "@image_key", "image_only": False},
                {
                    "_target_": "NormalizeIntensityd",
                    "keys": "@image_key",
                    "nonzero": True,
                    "channel_wise": True,
                },
            ],
        },
        "output_dir": "$@bundle_root + '/eval'",
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [32, 32, 32],
            "sw_batch_size": 1,
            "overlap": 0.5,
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "@image_key",
                    "meta_keys": "pred_meta_dict",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5},
                {
                    "_target_": "Lambdad",
                    "keys": "pred",
                    "func": "$lambda x: torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0, 1, "
                    "torch.where(x[[1]] > 0, 2, 0)))",
                },
                {
                    "_target_": "SaveImaged",
                    "keys": "pred",
                    "meta_keys": "pred_meta_dict",
                    "output_dir": "@output_dir",
                    "output_postfix": "seg",
                    "resample": False,
                    "squeeze_end_dims": True,
                },
            ],
        },
        "checkpointloader": {
            "_target_": "CheckpointLoader",
            "load_path": "$@bundle_root + '/models/model.pt'",
            "load_dict": {"model": "@network"},
        },
    }
    return meta, config


#: model id -> (bundle name, builder of (metadata, inference config)).
BUNDLES = {
    "monai-wholebody-ct-segmentation": ("wholeBody_ct_segmentation", _wholebody),
    "monai-lung-nodule-ct-detection": ("lung_nodule_ct_detection", _nodule),
    "monai-brats-mri-segmentation": ("brats_mri_segmentation", _brats),
}


def make_tiny_bundle(
    model_id: str, folder: Path, *, bias: dict[str, float] | None = None, seed: int = 0
) -> Path:
    """Write the tiny bundle standing in for ``model_id`` into ``folder/<bundle name>/``.

    The weights are the state dict of the network its own config builds (seeded); ``bias``
    sets parameters whose name ends with a key to a constant (e.g. the detector's
    classification bias, to make it find boxes or none)."""
    import torch
    from monai.bundle import ConfigParser

    name, build = BUNDLES[model_id]
    meta, config = build()
    root = folder / name
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "metadata.json").write_text(json.dumps(meta, indent=4))
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=4))
    (root / "LICENSE").write_text("Apache License, Version 2.0 (tiny test bundle)\n")
    (root / "docs" / "README.md").write_text(f"# {name} (tiny test bundle)\n\nMade-up weights for tests.\n")
    torch.manual_seed(seed)
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser["device"] = "$torch.device('cpu')"
    network = parser.get_parsed_content("network_def")
    state = network.state_dict()
    with torch.no_grad():
        for key, value in (bias or {}).items():
            for pname, tensor in state.items():
                if pname.endswith(key):
                    tensor.fill_(value)
    torch.save(state, root / "models" / "model.pt")
    return root


def install_tiny_bundle(settings: Settings, model_id: str, *, bias: dict[str, float] | None = None) -> Path:
    """Make the tiny bundle for ``model_id`` and register it with the model registry."""
    from copilot.models.registry import ModelRegistry

    folder = make_tiny_bundle(model_id, settings.cache_dir / "tiny-bundles", bias=bias)
    ModelRegistry(settings).add(model_id, folder)
    return folder


def bundle_zip(folder: Path) -> bytes:
    """A bundle folder as the Model Zoo zips it (one top folder holding the bundle)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()
