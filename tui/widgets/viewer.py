"""The image viewer: the file's own windows in stored units, zoom and pan, overlays, at the true
aspect ratio, rendered with textual-image (Kitty/Sixel graphics where the terminal has them,
half-block characters elsewhere).

Geometry rule: the image is shown at its physical aspect ratio, (columns x column spacing) /
(rows x row spacing), whatever the pane's shape and the terminal's cell shape; the unused
part of the pane is left empty (letterboxed), never filled by stretching.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.events import Resize
from textual.widgets import Static

from copilot.study.voi import Window, apply_window

#: Longest side kept for display; a terminal shows far fewer pixels, and windowing stays fast.
MAX_SIDE = 1024


def cell_shape() -> tuple[int, int]:
    """(width, height) of a terminal cell in pixels, as textual-image measured it."""
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
        if size.width > 0 and size.height > 0:
            return size.width, size.height
    except Exception:  # no terminal (tests, pipes): the VT340 shape textual-image assumes too
        pass
    return 10, 20


def fit_cells(aspect: float, avail_w: int, avail_h: int, cell: tuple[int, int]) -> tuple[int, int]:
    """The largest (columns, rows) box inside ``avail_w`` x ``avail_h`` cells whose shape in
    pixels is ``aspect`` (width / height) for cells of ``cell`` = (width, height) pixels."""
    if avail_w < 1 or avail_h < 1 or aspect <= 0:
        return 0, 0
    cw, ch = cell
    h = avail_h
    w = round(aspect * h * ch / cw)
    if w > avail_w:
        w = avail_w
        h = max(1, min(avail_h, round(w * cw / (aspect * ch))))
    return max(1, w), h


def crop(arr: np.ndarray, zoom: float, cx: float, cy: float) -> np.ndarray:
    """The 1/zoom part of ``arr`` centred on (cx, cy) (fractions of width and height),
    shifted to stay inside the image."""
    if zoom <= 1.0:
        return arr
    h, w = arr.shape[:2]
    ch, cw = max(1, round(h / zoom)), max(1, round(w / zoom))
    y0 = int(np.clip(round(cy * h - ch / 2), 0, h - ch))
    x0 = int(np.clip(round(cx * w - cw / 2), 0, w - cw))
    return arr[y0 : y0 + ch, x0 : x0 + cw]


@dataclass
class Display:
    """What the viewer shows of one image: values, their units, polarity and geometry."""

    values: np.ndarray
    """(H, W) float32: stored values after the Modality LUT, or display values in [0, 1]."""
    stored: bool
    """True when ``values`` are stored units (windows from the file apply to them)."""
    monochrome1: bool
    aspect: float
    presets: list[Window]


def make_display(image: Any, presets: list[Window] | None = None) -> Display:
    """Build a :class:`Display` from a :class:`copilot.study.pixels.PixelImage` (or a plain
    (H, W) array in [0, 1]) and the file's windows.

    Presets: the file's own windows first, then the image's own range (what the loader shows)
    and the full stored range; in display units only "full range"."""
    if isinstance(image, np.ndarray):
        gray, raw, stored_range, spacing, mono1 = image, None, None, None, False
    else:
        gray, raw = image.grayscale, image.modality_values
        stored_range, spacing = image.stored_range, image.spacing_mm
        mono1 = image.photometric == "MONOCHROME1"
    h, w = gray.shape[:2]
    row_mm, col_mm = spacing if spacing else (1.0, 1.0)
    aspect = (w * col_mm) / (h * row_mm) if h and w and row_mm > 0 and col_mm > 0 else 1.0
    stored = raw is not None and np.ndim(raw) == 2 and np.shape(raw) == gray.shape
    values = np.asarray(raw if stored else gray, dtype=np.float32)
    scale = max(h, w) / MAX_SIDE
    if scale > 1:
        size = (max(1, round(w / scale)), max(1, round(h / scale)))
        values = np.asarray(PILImage.fromarray(values, mode="F").resize(size, PILImage.Resampling.BILINEAR))
    windows: list[Window] = list(presets or []) if stored else []
    finite = values[np.isfinite(values)]
    if finite.size:
        lo, hi = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
        if hi <= lo:
            lo, hi = float(finite.min()), float(finite.max()) + 1.0
        windows.append(Window("image range", (lo + hi) / 2, max(hi - lo, 1e-3 if not stored else 1.0)))
    if stored and stored_range is not None and stored_range[1] > stored_range[0]:
        low, high = stored_range
        windows.append(Window("full stored range", (low + high) / 2, high - low))
    if not stored:
        windows.append(Window("full range", 0.5, 1.0))
    return Display(values, stored, mono1 and stored, aspect, windows)


class ImageViewer(Container, can_focus=True):
    """Shows the selected image. With focus: arrows pan when zoomed, ``n``/``p`` (or Page
    Down/Up) step through the studies. Window, zoom and overlays have app-wide keys."""

    DEFAULT_CSS = """
    ImageViewer { width: 1fr; height: 1fr; layout: vertical; }
    ImageViewer:focus #viewer-status { color: $accent; }
    ImageViewer #image-box { height: 1fr; align: center middle; }
    ImageViewer #viewer-status { height: 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("up", "pan(0, -1)", "Pan", show=False),
        Binding("down", "pan(0, 1)", "Pan", show=False),
        Binding("left", "pan(-1, 0)", "Pan", show=False),
        Binding("right", "pan(1, 0)", "Pan", show=False),
        Binding("n,pagedown", "app.step_study(1)", "Next study"),
        Binding("p,pageup", "app.step_study(-1)", "Prev study"),
    ]

    def __init__(self, image_widget: type[Any] | None = None) -> None:
        super().__init__(id="viewer")
        self._image_cls = image_widget
        self.display_data: Display | None = None
        self.caption = ""
        self.preset_index = 0
        self.center, self.window_width = 0.5, 1.0
        self.zoom, self.cx, self.cy = 1.0, 0.5, 0.5
        self.overlays: list[tuple[str, str]] = []
        self.overlay_index = -1

    def compose(self) -> ComposeResult:
        """The image, centred in its box, and a status line."""
        if self._image_cls is None:
            from textual_image.widget import Image

            self._image_cls = Image
        with Container(id="image-box"):
            yield self._image_cls(None, id="image")
        yield Static("No image selected", id="viewer-status")

    # -- state ---------------------------------------------------------------------------
    @property
    def gray(self) -> np.ndarray | None:
        """The values shown (stored units when known), or None."""
        return None if self.display_data is None else self.display_data.values

    @property
    def window(self) -> Window:
        """The window in use (a preset, or the preset as adjusted)."""
        function = "LINEAR"
        if self.display_data and self.display_data.presets:
            function = self.display_data.presets[self.preset_index].function
        return Window(self.preset_name, self.center, self.window_width, function)

    @property
    def preset_name(self) -> str:
        """The name of the preset the window started from."""
        if not self.display_data or not self.display_data.presets:
            return ""
        return self.display_data.presets[self.preset_index].name

    def set_image(self, image: Any, caption: str = "", presets: list[Window] | None = None) -> None:
        """Show a new image (a PixelImage, an (H, W) array in [0, 1], or None to clear),
        starting from the file's own window; resets zoom, pan and overlays."""
        self.display_data = None if image is None else make_display(image, presets)
        self.overlays, self.overlay_index = [], -1
        self.caption = caption
        self._reset_view()
        self.refresh_image()
        self.call_after_refresh(self.fit)

    def _reset_view(self) -> None:
        self.preset_index = 0
        self.zoom, self.cx, self.cy = 1.0, 0.5, 0.5
        if self.display_data and self.display_data.presets:
            first = self.display_data.presets[0]
            self.center, self.window_width = first.center, first.width

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

    def cycle_preset(self) -> str:
        """The next window preset (the file's own ones first); returns its name."""
        if not self.display_data or not self.display_data.presets:
            return "no image"
        self.preset_index = (self.preset_index + 1) % len(self.display_data.presets)
        preset = self.display_data.presets[self.preset_index]
        self.center, self.window_width = preset.center, preset.width
        self.refresh_image()
        return f"window: {preset.name}"

    def brighter(self, steps: int) -> None:
        """``steps`` > 0 brightens (lowers the window centre; raises it for MONOCHROME1)."""
        sign = -1 if self.display_data and self.display_data.monochrome1 else 1
        self.center -= sign * steps * 0.05 * self.window_width
        self.refresh_image()

    def widen(self, factor: float) -> None:
        """Multiply the window width (``factor`` > 1: wider, less contrast)."""
        floor = 1.0 if self.display_data and self.display_data.stored else 1e-3
        self.window_width = max(floor, self.window_width * factor)
        self.refresh_image()

    def zoom_by(self, factor: float) -> None:
        """Zoom in (``factor`` > 1) or out, between 1x and 8x."""
        self.zoom = float(np.clip(self.zoom * factor, 1.0, 8.0))
        if self.zoom == 1.0:
            self.cx, self.cy = 0.5, 0.5
        self.refresh_image()

    def action_pan(self, dx: int, dy: int) -> None:
        """Move the zoomed view by a tenth of what is shown."""
        if self.zoom <= 1.0:
            self.notify("Zoom in (+) to pan", timeout=2)
            return
        half = 0.5 / self.zoom
        self.cx = float(np.clip(self.cx + dx * 0.2 * half, half, 1 - half))
        self.cy = float(np.clip(self.cy + dy * 0.2 * half, half, 1 - half))
        self.refresh_image()

    def reset(self) -> None:
        """The file's window, no zoom, overlays off."""
        self.overlay_index = -1
        self._reset_view()
        self.refresh_image()

    # -- drawing -------------------------------------------------------------------------
    def rendered(self) -> PILImage.Image | None:
        """The PIL image currently shown (for the widget and for tests)."""
        data = self.display_data
        if data is None:
            return None
        if self.overlay_index >= 0:
            arr = np.asarray(PILImage.open(self.overlays[self.overlay_index][1]).convert("RGB"))
            return PILImage.fromarray(crop(arr, self.zoom, self.cx, self.cy))
        part = crop(data.values, self.zoom, self.cx, self.cy)
        if data.stored:
            shown = apply_window(part, self.window)
        else:  # display units in [0, 1]: a plain linear window
            low = self.center - self.window_width / 2
            shown = np.clip((part - low) / max(self.window_width, 1e-3), 0.0, 1.0)
        if data.monochrome1:
            shown = 1.0 - shown
        return PILImage.fromarray((shown * 255).astype(np.uint8)).convert("RGB")

    def fit(self) -> None:
        """Size the image to its physical aspect ratio inside the box (letterboxed)."""
        if not self.is_mounted:
            return
        image = self.query_one("#image")
        box = self.query_one("#image-box")
        if self.display_data is None:
            image.styles.width, image.styles.height = 0, 0
            return
        w, h = fit_cells(
            self.display_data.aspect, box.content_size.width, box.content_size.height, cell_shape()
        )
        if (image.styles.width, image.styles.height) != (w, h):
            image.styles.width, image.styles.height = w, h

    def on_resize(self, event: Resize) -> None:
        """Refit after the layout settles."""
        self.call_after_refresh(self.fit)

    def refresh_image(self) -> None:
        """Redraw the image and the status line."""
        if not self.is_mounted:
            return
        image = self.query_one("#image")
        image.image = self.rendered()  # type: ignore[attr-defined]
        self.query_one("#viewer-status", Static).update(self.status_text())

    def status_text(self) -> str:
        """Caption, window (stored units when known), zoom and overlay."""
        data = self.display_data
        if data is None:
            return "No image selected"
        fmt = "{:.0f}" if data.stored else "{:.2f}"
        units = "" if data.stored else " (display units)"
        overlay = "" if self.overlay_index < 0 else f" · overlay {self.overlays[self.overlay_index][0]}"
        return (
            f"{self.caption} · {self.preset_name}: WL {fmt.format(self.center)} "
            f"WW {fmt.format(self.window_width)}{units} · zoom {self.zoom:.1f}x{overlay}"
        )
