"""The image viewer: window/level, zoom and overlays, rendered with textual-image (Kitty/Sixel
graphics where the terminal has them, half-block characters elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


def window(gray: np.ndarray, center: float, width: float) -> np.ndarray:
    """Apply a display window (both in [0, 1] units of the image range)."""
    low = center - width / 2
    return np.clip((gray - low) / max(width, 1e-3), 0.0, 1.0)


def zoom_crop(arr: np.ndarray, zoom: float) -> np.ndarray:
    """The centre 1/zoom of the image."""
    if zoom <= 1.0:
        return arr
    h, w = arr.shape[:2]
    ch, cw = max(1, int(h / zoom)), max(1, int(w / zoom))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return arr[y0 : y0 + ch, x0 : x0 + cw]


class ImageViewer(Vertical):
    """Shows the selected image; keys change window/level and zoom, ``o`` cycles overlays."""

    DEFAULT_CSS = """
    ImageViewer { width: 1fr; }
    ImageViewer #image { height: 1fr; width: auto; }
    ImageViewer #viewer-status { height: 1; color: $text-muted; }
    """

    def __init__(self, image_widget: type[Any] | None = None) -> None:
        super().__init__(id="viewer")
        self._image_cls = image_widget
        self.gray: np.ndarray | None = None
        self.caption = ""
        self.level, self.window_width, self.zoom = 0.5, 1.0, 1.0
        self.overlays: list[tuple[str, str]] = []
        self.overlay_index = -1

    def compose(self) -> ComposeResult:
        """The image and a status line."""
        if self._image_cls is None:
            from textual_image.widget import Image

            self._image_cls = Image
        yield self._image_cls(None, id="image")
        yield Static("No image selected", id="viewer-status")

    def set_image(self, gray: np.ndarray | None, caption: str = "") -> None:
        """Show a new image (grayscale in [0, 1]); resets window, zoom and overlays."""
        self.gray = gray
        self.overlays, self.overlay_index = [], -1
        self.level, self.window_width, self.zoom = 0.5, 1.0, 1.0
        self.caption = caption
        self.refresh_image()

    def set_overlays(self, overlays: list[tuple[str, str]]) -> None:
        """Overlay PNGs (label, path) from the last answer for this image."""
        self.overlays = [(label, path) for label, path in overlays if Path(path).exists()]
        self.overlay_index = -1
        self.refresh_image()

    def cycle_overlay(self) -> str:
        """Off -> each overlay -> off; returns what is shown."""
        if not self.overlays:
            return "no overlays for this image"
        self.overlay_index = self.overlay_index + 1 if self.overlay_index + 1 < len(self.overlays) else -1
        self.refresh_image()
        return (
            "overlays off" if self.overlay_index < 0 else f"overlay: {self.overlays[self.overlay_index][0]}"
        )

    def adjust(self, center: float = 0.0, width: float = 0.0, zoom: float = 1.0) -> None:
        """Change level (centre), window width and zoom."""
        self.level = float(np.clip(self.level + center, 0.0, 1.0))
        self.window_width = float(np.clip(self.window_width + width, 0.05, 2.0))
        self.zoom = float(np.clip(self.zoom * zoom, 1.0, 8.0))
        self.refresh_image()

    def reset(self) -> None:
        """Full window, no zoom, overlays off."""
        self.level, self.window_width, self.zoom, self.overlay_index = 0.5, 1.0, 1.0, -1
        self.refresh_image()

    def rendered(self) -> PILImage.Image | None:
        """The PIL image currently shown (for the widget and for tests)."""
        if self.gray is None:
            return None
        if self.overlay_index >= 0:
            arr = np.asarray(PILImage.open(self.overlays[self.overlay_index][1]).convert("RGB"))
            return PILImage.fromarray(zoom_crop(arr, self.zoom))
        shown = zoom_crop(window(self.gray, self.level, self.window_width), self.zoom)
        return PILImage.fromarray((shown * 255).astype(np.uint8)).convert("RGB")

    def refresh_image(self) -> None:
        """Redraw the image and the status line."""
        if not self.is_mounted:
            return
        image = self.query_one("#image")
        image.image = self.rendered()  # type: ignore[attr-defined]
        overlay = "" if self.overlay_index < 0 else f" · overlay {self.overlays[self.overlay_index][0]}"
        status = (
            (
                f"{self.caption} · level {self.level:.2f} width {self.window_width:.2f} "
                f"zoom {self.zoom:.1f}x{overlay}"
            )
            if self.gray is not None
            else "No image selected"
        )
        self.query_one("#viewer-status", Static).update(status)
