"""Shared image helpers for the vision tools: TorchXRayVision preprocessing, geometry,
Grad-CAM, anatomical location words and PNG overlays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from copilot.paths import image_slot

if TYPE_CHECKING:
    from copilot.study.pixels import PixelImage


@dataclass(frozen=True)
class CropGeometry:
    """How a model input square maps back onto the original image."""

    y0: int
    x0: int
    crop: int
    size: int
    height: int
    width: int

    def to_original(self, row: float, col: float) -> tuple[float, float]:
        """Model-input (row, col) to original-image (row, col)."""
        scale = self.crop / self.size
        return self.y0 + row * scale, self.x0 + col * scale

    def paste(self, square: np.ndarray) -> np.ndarray:
        """Resize a model-space map to the crop and place it on an original-sized canvas."""
        from skimage.transform import resize

        canvas = np.zeros((self.height, self.width), dtype=np.float32)
        canvas[self.y0 : self.y0 + self.crop, self.x0 : self.x0 + self.crop] = resize(
            square.astype(np.float32),
            (self.crop, self.crop),
            order=1,
            preserve_range=True,
            anti_aliasing=False,
        )
        return canvas


def xrv_input(image: PixelImage, size: int) -> tuple[np.ndarray, CropGeometry]:
    """The (1, size, size) float32 input TorchXRayVision models expect, and its geometry.

    Grey levels are scaled to [-1024, 1024] (``xrv.datasets.normalize``), the long side is
    centre-cropped (``XRayCenterCrop``) and the square resized with area averaging, the
    interpolation of TorchXRayVision's ``XRayResizer(engine="cv2")`` (INTER_AREA), done in torch:
    5x faster than its default skimage engine, which dominated the classifier's time on a CPU.
    """
    import torch
    import torch.nn.functional as F
    import torchxrayvision as xrv

    gray = image.grayscale
    h, w = gray.shape
    img = (gray.astype(np.float32) * 2048.0 - 1024.0)[None, ...]
    crop = min(h, w)
    y0, x0 = h // 2 - crop // 2, w // 2 - crop // 2
    img = np.ascontiguousarray(xrv.datasets.XRayCenterCrop()(img))
    if crop != size:
        tensor = torch.from_numpy(img)[None]
        mode = "area" if crop > size else "bilinear"
        img = F.interpolate(tensor, size=(size, size), mode=mode)[0].numpy()
    return img.astype(np.float32, copy=False), CropGeometry(y0, x0, crop, size, h, w)


def grad_cams(model: Any, layer: Any, x: Any, class_indices: Sequence[int]) -> list[np.ndarray]:
    """Grad-CAM maps of several classes at ``layer`` for one input ``x`` (1, C, H, W).

    One forward pass, one backward pass per class. Each map is at ``x``'s resolution with
    values in [0, 1]: the channel-wise mean gradient weights the layer's activations,
    negatives are clipped, the result is upsampled and scaled to its maximum.
    """
    import torch
    import torch.nn.functional as F

    if not class_indices:
        return []
    store: dict[str, Any] = {}

    def forward_hook(_m: Any, _i: Any, out: Any) -> None:
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    maps: list[np.ndarray] = []
    handle = layer.register_forward_hook(forward_hook)
    try:
        with torch.enable_grad():
            out = model(x.detach().clone().requires_grad_(True))
            act = store["act"].detach()
            for n, index in enumerate(class_indices):
                model.zero_grad(set_to_none=True)
                out[0, index].backward(retain_graph=n < len(class_indices) - 1)
                weights = store["grad"].detach().mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * act).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
                cam_np = cam[0, 0].float().cpu().numpy()
                top = float(cam_np.max())
                maps.append((cam_np / top if top > 0 else np.zeros_like(cam_np)).astype(np.float32))
    finally:
        handle.remove()
    return maps


def grad_cam(model: Any, layer: Any, x: Any, class_index: int) -> np.ndarray:
    """Grad-CAM of one class (see :func:`grad_cams`)."""
    return grad_cams(model, layer, x, [class_index])[0]


def saliency_box(heat: np.ndarray, level: float = 0.5) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around the region of ``heat`` >= ``level`` that holds its peak."""
    from scipy import ndimage

    labels, _ = ndimage.label(heat >= level * float(heat.max() or 1))
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    ys, xs = np.nonzero(labels == labels[peak])
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def describe_location(
    row: float, col: float, height: int, width: int
) -> tuple[Literal["left", "right"], str]:
    """(side, zone) of an image point on a frontal chest film in radiological convention.

    The patient's right is on the image's left. Zones are thirds of the image height (upper,
    mid, lower): an approximation of lung zones, stated as such.
    """
    side: Literal["left", "right"] = "right" if col < width / 2 else "left"
    third = row / max(height, 1)
    zone = "upper" if third < 1 / 3 else "mid" if third < 2 / 3 else "lower"
    return side, zone


def artifact_path(root: Path, instance_key: str, name: str) -> Path:
    """A stable artifact path for one image under the artifacts dir (never the study folder)."""
    folder = root / image_slot(instance_key)
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return folder / f"{safe}.png"


def save_overlay(
    gray: np.ndarray,
    heat: np.ndarray,
    path: Path,
    color: tuple[int, int, int] = (255, 64, 0),
    alpha: float = 0.45,
) -> Path:
    """Write an RGB PNG of ``gray`` with ``heat`` (0-1, same shape) blended in ``color``."""
    from PIL import Image

    base = np.clip(gray, 0, 1)[..., None] * 255.0
    tint = np.array(color, dtype=np.float32)[None, None, :]
    weight = np.clip(heat, 0, 1)[..., None] * alpha
    rgb = base * (1 - weight) + tint * weight
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path
