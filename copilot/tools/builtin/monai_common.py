"""What the MONAI expert tools share: loading a bundle, feeding it a DICOM volume, running its
own pre-processing, inferer and post-processing, and writing masks for the viewer.

Loading follows the bundle, not a copy of it: ``configs/inference.json`` is parsed with
``monai.bundle.ConfigParser`` (the network definition, transforms and inferer come from it),
and ``models/model.pt`` is loaded into that network with ``strict=True``, so a bundle whose
weights do not fit its network is refused, never run half-initialised. Only a bundle the model
registry verified is parsed (its ``$`` expressions are code).

What is not taken from the bundle, and why:

- file I/O transforms (``LoadImage*``, ``EnsureChannelFirst*``, ``SaveImage*``): the volume
  comes from DICOM in memory (:mod:`copilot.study.volume`) as a ``MetaTensor`` with its RAS
  affine, the form ``LoadImaged`` would have produced, and masks are written by the tools;
- the bundle's ``scripts/`` package (the detection bundle's inferer): no Python shipped in a
  download is imported; the ten-line rule it applies (sliding window only for images larger
  than the patch) is :func:`run_detector`'s.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from copilot import outputs
from copilot.errors import InputRejectedError, OutputError, StudyError, ToolError
from copilot.tools.contract import Provenance, Tool

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.model import InstanceRecord, Series, Study
    from copilot.study.volume import Volume

__all__ = [
    "BundleTool",
    "LoadedBundle",
    "find_volume",
    "load_bundle",
    "metatensor",
    "preprocess",
    "run_detector",
    "segment",
    "write_mask_volume",
]

log = logging.getLogger(__name__)

#: Transform classes whose work is done by the copilot (file I/O), left out of the bundle's chains.
SKIPPED_TRANSFORMS = ("LoadImage", "EnsureChannelFirst", "SaveImage")

_parse_lock = threading.Lock()


@dataclass
class LoadedBundle:
    """A parsed bundle with its network's weights loaded (eval mode, on ``device``)."""

    folder: Path
    parser: Any
    network: Any
    device: str
    metadata: dict[str, Any]
    weights: str

    def get(self, key: str) -> Any:
        """A parsed config item (``preprocessing``, ``inferer``...); cached by the parser."""
        with _parse_lock:
            return self.parser.get_parsed_content(key)

    def has(self, key: str) -> bool:
        """Whether the config defines ``key``."""
        return key in self.parser

    @property
    def version(self) -> str:
        """The bundle's version (metadata)."""
        return str(self.metadata.get("version", ""))

    def channel_names(self) -> dict[int, str]:
        """Output channel index -> name, from ``network_data_format.outputs.pred.channel_def``."""
        fmt = self.metadata.get("network_data_format", {})
        channels = fmt.get("outputs", {}).get("pred", {}).get("channel_def", {})
        return {int(k): str(v) for k, v in channels.items()}


def load_bundle(
    folder: Path, device: str, overrides: dict[str, Any] | None = None, weights: str = "models/model.pt"
) -> tuple[LoadedBundle, int]:
    """Parse ``folder``'s inference config and load ``weights`` into its network; returns the
    bundle and the bytes its parameters take (for the runtime's model cache).

    Raises :class:`ToolError` when the config does not build or the weights do not fit."""
    import torch
    from monai.bundle import ConfigParser

    from copilot.runtime.device import module_bytes

    parser = ConfigParser()
    parser.read_config(str(folder / "configs" / "inference.json"))
    parser.read_meta(str(folder / "configs" / "metadata.json"))
    parser["bundle_root"] = str(folder)
    parser["device"] = f"$torch.device('{device}')"
    for key, value in (overrides or {}).items():
        parser[key] = value
    for chain in ("preprocessing", "postprocessing"):
        _drop_file_io(parser, chain)
    try:
        with _parse_lock:
            network = parser.get_parsed_content("network")
    except Exception as exc:  # a config that does not build is the bundle's fault, said plainly
        raise ToolError(
            f"the bundle in {folder} does not build its network: {type(exc).__name__}: {exc}"
        ) from exc
    path = folder / weights
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ToolError(f"{path}: not a loadable state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a CheckpointLoader dict ({"model": state_dict, ...})
    try:
        network.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ToolError(f"{path} does not fit the bundle's network: {str(exc).splitlines()[0]}") from exc
    network.eval().to(device)
    metadata = dict(parser.get("_meta_") or {})
    return LoadedBundle(folder, parser, network, device, metadata, weights), module_bytes(network)


def _drop_file_io(parser: Any, chain: str) -> None:
    """Leave the file readers and writers out of a transform chain before it is built (an
    ``itkreader`` loader would not even build without ITK installed)."""
    key = f"{chain}#transforms"
    if chain not in parser or key not in parser:
        return
    kept = [
        t
        for t in parser[key]
        if not (
            isinstance(t, dict)
            and str(t.get("_target_", "")).rsplit(".", 1)[-1].startswith(SKIPPED_TRANSFORMS)
        )
    ]
    parser[key] = kept


# -- volumes in, volumes out ------------------------------------------------------------------
def find_volume(
    instance: InstanceRecord | None, modality: str, settings: Settings
) -> tuple[Study, Series, Volume]:
    """The study of ``instance`` and the usable volume of ``modality`` a tool should read
    (the instance's own series when it is one), decoded. Raises :class:`InputRejectedError`
    saying which series exist and what is wrong with them when there is none."""
    from copilot.study.volume import best_volume, load_volume, study_for

    if instance is None:
        raise InputRejectedError(f"this tool reads {modality} volumes and no image was given")
    try:
        study = study_for(instance, settings)
    except StudyError as exc:
        raise InputRejectedError(str(exc)) from exc
    series = best_volume(study, modality, prefer=instance.series_uid)
    if series is None:
        raise InputRejectedError(
            f"no usable {modality} volume in this study: {describe_series(study, modality)}"
        )
    return study, series, load_volume(series, settings)


def describe_series(study: Study, modality: str) -> str:
    """Why each series of ``study`` is not a usable ``modality`` volume, in one line."""
    bits = []
    for s in study.series:
        name = s.description or f"series {s.number or '?'}"
        if s.modality.upper() != modality.upper():
            bits.append(f"{name} is {s.modality or 'of unknown modality'}")
        elif s.volume is None:
            bits.append(f"{name} is not a volume ({len(s.instances)} image(s))")
        elif s.volume.problems:
            bits.append(f"{name}: {'; '.join(s.volume.problems)}")
    return "; ".join(bits) or "the study holds no series"


def metatensor(arrays: list[np.ndarray], volume: Volume) -> Any:
    """Channels ``(C, slices, rows, columns)`` as a MONAI ``MetaTensor`` with the volume's RAS
    affine: what ``LoadImaged`` + ``EnsureChannelFirstd`` would have produced from a file."""
    import torch
    from monai.data import MetaTensor

    data = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).astype(np.float32)))
    affine = torch.as_tensor(volume.ras_affine(), dtype=torch.float64)
    meta = {
        "original_affine": affine.clone(),
        "spatial_shape": np.asarray(arrays[0].shape),
        "original_channel_dim": 0,
    }
    return MetaTensor(data, affine=affine, meta=meta)


def preprocess(bundle: LoadedBundle, image: Any, key: str = "image") -> dict[str, Any]:
    """The bundle's ``preprocessing`` chain on ``{key: image}`` (built without its file loaders)."""
    chain = bundle.get("preprocessing")
    data: dict[str, Any] = chain({key: image})
    return data


def postprocess(bundle: LoadedBundle, data: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ``postprocessing`` chain (its ``Invertd`` maps predictions back onto the
    DICOM grid; built without its writers). A softmax directly followed by an argmax is skipped: the
    argmax of the logits is the same and a full-size softmax of 105 channels is gigabytes."""
    chain = bundle.get("postprocessing")
    transforms = list(chain.flatten().transforms)
    for i, transform in enumerate(transforms):
        following = transforms[i + 1] if i + 1 < len(transforms) else None
        if _softmax_before_argmax(transform, following):
            continue
        data = transform(data)
    return data


def _softmax_before_argmax(transform: Any, following: Any) -> bool:
    if type(transform).__name__ != "Activationsd" or type(following).__name__ != "AsDiscreted":
        return False
    softmax = any(getattr(t, "softmax", False) for t in getattr(transform, "activations", []) or [])
    softmax = softmax or bool(getattr(getattr(transform, "activations", None), "softmax", False))
    argmax = bool(getattr(getattr(following, "discretize", None), "argmax", False))
    return softmax and argmax


def segment(bundle: LoadedBundle, image: Any) -> np.ndarray:
    """Run a segmentation bundle on ``image`` (a MetaTensor): pre-processing, the bundle's
    inferer, post-processing; returns the prediction on the input grid as a numpy array
    ``(C, slices, rows, columns)``."""
    import torch

    data = preprocess(bundle, image)
    inferer = bundle.get("inferer")
    batch = data["image"].unsqueeze(0).to(bundle.device)
    with torch.inference_mode(), _autocast(bundle.device):
        pred = inferer(batch, bundle.network)
    data["pred"] = pred[0].float().cpu() if hasattr(pred[0], "float") else pred[0]
    data["image"] = data["image"].cpu()
    data = postprocess(bundle, data)
    out = data["pred"]
    return np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out)


def run_detector(bundle: LoadedBundle, image: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Run a detection bundle (its ``detector`` with ``detector_ops`` applied) on ``image``;
    returns the pre-processed image (its affine places the boxes) and one dict per detection
    with ``box`` (x0, y0, z0, x1, y1, z1 in that image's voxels), ``label`` and ``score``."""
    import torch

    data = preprocess(bundle, image)
    detector = bundle.get("detector")
    if bundle.has("detector_ops"):
        bundle.get("detector_ops")
    detector.eval()  # what the bundle's inferer does: the detector follows its network's mode
    tensor = data["image"]
    roi = getattr(getattr(detector, "inferer", None), "roi_size", None)
    force = bool(bundle.parser.get("force_sliding_window", False))
    use_inferer = force or (roi is not None and tensor[0].numel() >= int(np.prod(roi)))
    with torch.inference_mode(), _autocast(bundle.device):
        out = detector([tensor.to(bundle.device)], use_inferer=use_inferer)
    result = out[0]
    box_key = getattr(detector, "target_box_key", "box")
    label_key = getattr(detector, "target_label_key", "label")
    score_key = getattr(detector, "pred_score_key", f"{label_key}_scores")
    boxes = result[box_key].float().cpu().numpy()
    labels = result[label_key].cpu().numpy()
    scores = result[score_key].float().cpu().numpy()
    detections = [
        {"box": boxes[i].tolist(), "label": int(labels[i]), "score": float(scores[i])}
        for i in range(len(scores))
    ]
    return data["image"], detections


def _autocast(device: str) -> Any:
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def boxes_to_volume(
    boxes: list[list[float]], image: Any, volume: Volume
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boxes in the pre-processed image's voxels (x0, y0, z0, x1, y1, z1) as (low, high)
    voxel indices (slice, row, column) of the DICOM volume."""
    affine = np.asarray(image.affine, dtype=np.float64)  # voxel -> RAS
    lps_from_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    to_volume = np.linalg.inv(volume.affine) @ lps_from_ras @ affine
    out = []
    for box in boxes:
        lo, hi = np.asarray(box[:3]), np.asarray(box[3:])
        corners = np.array(
            [[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        idx = (to_volume @ corners.T).T[:, :3]
        out.append((idx.min(axis=0), idx.max(axis=0)))
    return out


def to_volume_grid(channels: np.ndarray, affine_ras: np.ndarray, volume: Volume) -> np.ndarray:
    """Binary channels ``(C, ...)`` on a model grid (``affine_ras``: voxel -> RAS) resampled
    onto the DICOM volume's grid (trilinear, then > 0.5): ``(C, slices, rows, columns)`` bool."""
    from scipy import ndimage

    lps_from_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    m = np.linalg.inv(np.asarray(affine_ras, dtype=np.float64)) @ np.linalg.inv(lps_from_ras) @ volume.affine
    out = np.zeros((channels.shape[0], *volume.array.shape), dtype=bool)
    for c in range(channels.shape[0]):
        moved = ndimage.affine_transform(
            channels[c].astype(np.float32),
            m[:3, :3],
            offset=m[:3, 3],
            output_shape=volume.array.shape,
            order=1,
        )
        out[c] = moved > 0.5
    return out


def write_mask_volume(
    settings: Settings,
    volume: Volume,
    label_map: np.ndarray,
    names: dict[int, str],
    tool: str,
    sources: Sequence[str | Path],
) -> Path:
    """Save a label map ``(slices, rows, columns)`` for the viewer (overlaid on the slice it
    belongs to) under the artifacts dir, through the write guard. The file holds ``labels``
    (uint8/uint16), ``names`` (value -> name), ``series_uid`` and ``positions_mm`` (each
    slice's position along the normal)."""
    import io
    import json

    digest = hashlib.sha256(f"{volume.series_uid}|{tool}".encode()).hexdigest()[:16]
    folder = settings.artifacts_dir / digest
    folder.mkdir(parents=True, exist_ok=True)
    dtype = np.uint8 if int(label_map.max(initial=0)) < 256 else np.uint16
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        labels=label_map.astype(dtype),
        names=np.asarray(json.dumps({str(k): v for k, v in names.items()})),
        series_uid=np.asarray(volume.series_uid),
        positions_mm=np.asarray([s.position_mm for s in volume.summary.order], dtype=np.float64),
    )
    path = folder / f"{tool}_mask.npz"
    try:
        outputs.write_bytes(path, buffer.getvalue(), sources=sources)
    except OutputError as exc:
        raise ToolError(str(exc)) from exc
    return path


def device_for(runtime: Any) -> str:
    """The device name the runtime selected (``cuda``, ``cpu``...)."""
    return str(getattr(runtime, "device_name", "cpu"))


class BundleTool(Tool):
    """Base of the MONAI tools: one bundle (``model_id``), loaded lazily once per process and
    device through the runtime's model cache, from the folder the model registry verified."""

    model_id: ClassVar[str]

    def bundle_overrides(self, folder: Path, device: str) -> dict[str, Any]:
        """Config values set before the bundle is parsed (override per tool)."""
        return {}

    def bundle_weights(self, folder: Path, device: str) -> str:
        """The weights file inside the bundle (override to choose another)."""
        return "models/model.pt"

    def _load_bundle(self) -> tuple[LoadedBundle, int]:
        from copilot.models.registry import ModelRegistry

        device = self.runtime.device_name
        folder = ModelRegistry(self.settings).ensure(self.model_id)
        return load_bundle(
            folder,
            device,
            self.bundle_overrides(folder, device),
            weights=self.bundle_weights(folder, device),
        )

    @property
    def bundle(self) -> LoadedBundle:
        """The loaded bundle, shared by every instance of the tool in this process; keyed by
        the verified hash of its weights, so weights replaced on disk are loaded afresh."""
        loaded: LoadedBundle = self.runtime.models.get(self.model_key(self.model_id), self._load_bundle)
        return loaded

    def load(self) -> None:
        """Load the bundle (weights missing: :class:`WeightsMissingError` with the pull command)."""
        _ = self.bundle

    def provenance_for(self, seconds: float) -> Provenance:
        """Provenance naming the bundle version that produced the result."""
        prov = self.provenance(seconds, self.model_id)
        version = self.bundle.version
        return prov.model_copy(update={"model_revision": version or prov.model_revision})
