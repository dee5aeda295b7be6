"""The image viewer: the file's own windows in stored units, zoom and pan, overlays, at the true
aspect ratio, rendered with textual-image (Kitty/Sixel graphics where the terminal has them,
half-block characters elsewhere).

Geometry rule: the image is shown at its physical aspect ratio, (columns x column spacing) /
(rows x row spacing), whatever the pane's shape and the terminal's cell shape; the unused
part of the pane is left empty (letterboxed), never filled by stretching.

Volumes (CT, MR series): the viewer holds a :class:`SliceStack` (the slices in order along the
slice normal, from the header analysis) and scrolls it with the mouse wheel, Up/Down (when not
zoomed), ``,``/``.`` and Home/End; each step posts :class:`ImageViewer.SliceRequested` and the
app decodes that slice off the UI thread. The window, zoom and overlay stay as they were while
scrolling. Masks of the tools (label-map volumes) are drawn on the slice they belong to,
matched by the slice's position along the normal. The slice's own location (SliceLocation,
sign kept) is in the status line, and letters at the image's four edges name the patient
direction each faces (:mod:`copilot.study.orientation`): a CT stored posterior-up shows "P" at
the top.

Views side by side: a projection study with several views (a PA and a lateral) shows each view
in its own pane, in one row, labelled with its view (:mod:`copilot.tui.viewpanes` picks them).
The first pane is the *lead* image: the window, zoom, pan and overlay keys act on it (its label
is highlighted). The others are *companions*, each shown at its own file's first window and at
its own true aspect ratio; every pane gets an equal share of the width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.events import MouseScrollDown, MouseScrollUp, Resize
from textual.message import Message
from textual.widgets import Static

from copilot.study.orientation import EdgeMarkers, edge_markers, slice_location
from copilot.study.voi import Window, apply_window

#: Longest side kept for display; a terminal shows far fewer pixels, and windowing stays fast.
MAX_SIDE = 1024
#: Image panes the viewer has (the lead and up to two companions: a PA, a lateral, an AP).
PANES = 3
#: Columns between two panes.
PANE_GAP = 2


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


#: Overlay colours (RGB 0-1) by mask label value, cycled.
MASK_COLOURS = (
    (1.0, 0.25, 0.1),
    (0.1, 0.8, 0.3),
    (0.2, 0.5, 1.0),
    (1.0, 0.85, 0.1),
    (0.9, 0.2, 0.9),
    (0.1, 0.9, 0.9),
)
#: Positions (mm along the normal) closer than this are the same slice.
SAME_SLICE_MM = 0.05


@dataclass
class SliceStack:
    """A series shown slice by slice: each slice's record and frame, in order along the slice
    normal, with its position (mm) along it."""

    series_uid: str
    slices: list[tuple[Any, int | None]]
    positions_mm: list[float]
    plane: str
    caption: str
    modality: str = ""
    #: The patient direction each edge of a slice faces (None: orientation unknown).
    markers: EdgeMarkers | None = None
    #: The slice normal (LPS), for the file's own location when SliceLocation is absent.
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)

    @classmethod
    def from_series(cls, series: Any, caption: str = "") -> SliceStack | None:
        """The stack of a :class:`copilot.study.model.Series` that forms a volume (even a
        broken one: gaps are shown as they are), else None."""
        summary = series.volume
        if summary is None or not summary.order:
            return None
        slices = []
        for ref in summary.order:
            record = series.instances[ref.instance]
            slices.append((record, ref.frame if record.frames > 1 else None))
        return cls(
            series.series_uid,
            slices,
            [ref.position_mm for ref in summary.order],
            summary.orientation,
            caption,
            series.modality,
            edge_markers(summary.row_direction, summary.column_direction),
            summary.normal,
        )

    def location(self, index: int) -> float | None:
        """Slice ``index``'s location as its file says (sign kept), else None."""
        record, frame = self.slices[index]
        return slice_location(record, frame, self.normal)

    def __len__(self) -> int:
        return len(self.slices)


def mask_slice(path: str, series_uid: str, position_mm: float, cache: dict[str, Any]) -> np.ndarray | None:
    """The label-map slice of a tool's mask volume (``.npz``) at ``position_mm`` of series
    ``series_uid``, or None when the file is of another series or has no such slice."""
    data = cache.get(path)
    if data is None:
        try:
            with np.load(path) as npz:
                data = (str(npz["series_uid"]), np.asarray(npz["positions_mm"]), npz["labels"])
        except (OSError, KeyError, ValueError):
            data = ("", np.zeros(0), np.zeros((0, 0, 0)))
        cache[path] = data
    uid, positions, labels = data
    if uid != series_uid or positions.size == 0:
        return None
    k = int(np.argmin(np.abs(positions - position_mm)))
    if abs(float(positions[k]) - position_mm) > SAME_SLICE_MM:
        return None
    return np.asarray(labels[k])


def blend_mask(gray: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB float (H, W, 3) of ``gray`` (0-1) with each label value tinted in its colour; the
    mask is resized (nearest) to the image when their shapes differ."""
    if labels.shape != gray.shape:
        labels = np.asarray(
            PILImage.fromarray(labels.astype(np.int32)).resize(
                (gray.shape[1], gray.shape[0]), PILImage.Resampling.NEAREST
            )
        )
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    for value in np.unique(labels):
        if value == 0:
            continue
        colour = np.asarray(MASK_COLOURS[(int(value) - 1) % len(MASK_COLOURS)], dtype=np.float32)
        where = labels == value
        rgb[where] = rgb[where] * (1 - alpha) + colour * alpha
    return rgb


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


def windowed(data: Display, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """``data``'s values through a window, in [0, 1], inverted for MONOCHROME1."""
    if data.stored:
        shown = apply_window(data.values, Window("", center, width, function))
    else:  # display units in [0, 1]: a plain linear window
        low = center - width / 2
        shown = np.clip((data.values - low) / max(width, 1e-3), 0.0, 1.0)
    return 1.0 - shown if data.monochrome1 else shown


@dataclass
class Companion:
    """An image shown beside the lead one: another view of the study."""

    label: str
    display: Display
    source: str = ""
    """The image's SOP Instance UID."""

    def rendered(self) -> PILImage.Image:
        """The image at its file's first window."""
        first = self.display.presets[0] if self.display.presets else Window("", 0.5, 1.0)
        shown = windowed(self.display, first.center, first.width, first.function)
        return PILImage.fromarray((np.clip(shown, 0, 1) * 255).astype(np.uint8)).convert("RGB")


class ImageViewer(Container, can_focus=True):
    """Shows the selected image. With focus: arrows pan when zoomed (Up/Down scroll a volume's
    slices when not), ``,``/``.`` and the mouse wheel scroll slices, Home/End jump to the first
    and last, ``n``/``p`` (or Page Down/Up) step through the studies. Window, zoom and
    overlays have app-wide keys."""

    class SliceRequested(Message):
        """The viewer moved to slice ``index`` of its stack; the app decodes and shows it."""

        def __init__(self, stack: SliceStack, index: int) -> None:
            super().__init__()
            self.stack = stack
            self.index = index

    DEFAULT_CSS = """
    ImageViewer { width: 1fr; height: 1fr; layout: vertical; }
    ImageViewer:focus #viewer-status { color: $accent; }
    ImageViewer #image-box { height: 1fr; align: center middle; }
    ImageViewer .view-pane { width: auto; height: auto; }
    ImageViewer .view-pane.companion { margin: 0 0 0 2; }
    ImageViewer .view-pane.unused { display: none; }
    ImageViewer .view-label { height: 1; display: none; content-align: center middle; text-style: bold; }
    ImageViewer #image-box.-views .view-label { display: block; }
    ImageViewer #pane-0 .view-label { color: $accent; }
    ImageViewer #viewer-status { height: 1; color: $text-muted; }
    ImageViewer .marker { display: none; color: $warning; text-style: bold; }
    ImageViewer .marker.shown { display: block; }
    ImageViewer #mark-top { dock: top; height: 1; width: 1fr; content-align: center middle; }
    ImageViewer #mark-bottom { dock: bottom; height: 1; width: 1fr; content-align: center middle; }
    ImageViewer #mark-left { dock: left; width: 2; height: 1fr; content-align: left middle; }
    ImageViewer #mark-right { dock: right; width: 2; height: 1fr; content-align: right middle; }
    """

    BINDINGS = [
        Binding("up", "up_key", "Pan / slice", show=False),
        Binding("down", "down_key", "Pan / slice", show=False),
        Binding("full_stop", "slice(1)", "Next slice", show=False),
        Binding("comma", "slice(-1)", "Prev slice", show=False),
        Binding("home", "slice_to(0)", "First slice", show=False),
        Binding("end", "slice_to(-1)", "Last slice", show=False),
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
        self.stack: SliceStack | None = None
        self.slice_index = 0
        self._masks: dict[str, Any] = {}
        #: The lead image's view label ('' when it is shown alone) and SOP Instance UID.
        self.label = ""
        self.source = ""
        self.companions: list[Companion] = []

    def compose(self) -> ComposeResult:
        """The image, centred in its box, and a status line."""
        if self._image_cls is None:
            from textual_image.widget import Image

            self._image_cls = Image
        with Horizontal(id="image-box"):
            for edge in ("top", "bottom", "left", "right"):
                yield Static("", id=f"mark-{edge}", classes="marker")
            with Vertical(id="pane-0", classes="view-pane"):
                yield Static("", classes="view-label")
                yield self._image_cls(None, id="image")
            for n in range(1, PANES):
                with Vertical(id=f"pane-{n}", classes="view-pane companion unused"):
                    yield Static("", classes="view-label")
                    yield self._image_cls(None, id=f"image-{n}")
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

    def set_image(
        self,
        image: Any,
        caption: str = "",
        presets: list[Window] | None = None,
        *,
        label: str = "",
        source: str = "",
    ) -> None:
        """Show a new image (a PixelImage, an (H, W) array in [0, 1], or None to clear),
        starting from the file's own window; resets zoom, pan and overlays, leaves any slice
        stack and drops the companions. ``label``: its view, shown above it when companions
        join it; ``source``: its SOP Instance UID."""
        self.stack = None
        self.label, self.source = label, source
        self.companions = []
        self._show_new(image, caption, presets)

    def set_companions(self, companions: list[tuple[str, Any, list[Window], str]]) -> None:
        """Show other views beside the lead image: (label, image, the file's windows, SOP
        Instance UID) each, at most two (the viewer has :data:`PANES` panes)."""
        self.companions = [
            Companion(label, make_display(image, presets), source)
            for label, image, presets, source in companions[: PANES - 1]
        ]
        self.refresh_image()
        self.call_after_refresh(self.fit)

    @property
    def panes(self) -> list[tuple[str, str]]:
        """(label, SOP Instance UID) of every image shown, the lead first."""
        if self.display_data is None:
            return []
        return [(self.label, self.source)] + [(c.label, c.source) for c in self.companions]

    def _show_new(self, image: Any, caption: str, presets: list[Window] | None) -> None:
        self.display_data = None if image is None else make_display(image, presets)
        self.overlays, self.overlay_index = [], -1
        self.caption = caption
        self._reset_view()
        self.refresh_image()
        self.call_after_refresh(self.fit)

    # -- slices --------------------------------------------------------------------------
    def set_stack(self, stack: SliceStack, index: int | None = None) -> None:
        """Scroll ``stack`` from slice ``index`` (default the middle one); the first slice is
        shown when the app answers the :class:`SliceRequested` this posts."""
        self.stack = stack
        self.display_data = None
        self.label, self.source, self.companions = "", "", []
        self.overlays, self.overlay_index = [], -1
        self.caption = stack.caption
        self.slice_index = len(stack) // 2 if index is None else max(0, min(index, len(stack) - 1))
        self.refresh_image()
        self.post_message(self.SliceRequested(stack, self.slice_index))

    def show_slice(
        self, stack: SliceStack, index: int, image: Any, presets: list[Window] | None = None
    ) -> None:
        """Show decoded slice ``index`` of ``stack`` (ignored when the viewer moved on). The
        first slice starts from the file's window; later ones keep window, zoom and overlay."""
        if stack is not self.stack or index != self.slice_index:
            return
        if self.display_data is None:
            overlays, overlay_index = self.overlays, self.overlay_index
            self._show_new(image, stack.caption, presets)
            self.overlays, self.overlay_index = overlays, overlay_index
            self.refresh_image()
            return
        kept = (self.preset_index, self.display_data.presets)
        self.display_data = make_display(image, presets)
        if len(self.display_data.presets) == len(kept[1]):
            self.preset_index = kept[0]
        self.refresh_image()

    def step_slice(self, delta: int) -> bool:
        """Move ``delta`` slices (clamped to the stack); True when the slice changed."""
        if self.stack is None:
            return False
        target = max(0, min(self.slice_index + delta, len(self.stack) - 1))
        if target == self.slice_index:
            return False
        self.slice_index = target
        if self.is_mounted:
            self.query_one("#viewer-status", Static).update(self.status_text())
        self.post_message(self.SliceRequested(self.stack, target))
        return True

    def action_slice(self, delta: int) -> None:
        """Next (``.``) or previous (``,``) slice."""
        self.step_slice(delta)

    def action_slice_to(self, index: int) -> None:
        """First (Home) or last (End) slice."""
        if self.stack is not None:
            self.step_slice((index % len(self.stack)) - self.slice_index)

    def action_up_key(self) -> None:
        """Pan up when zoomed; otherwise the next slice (towards the end of the stack)."""
        if self.stack is not None and self.zoom <= 1.0:
            self.step_slice(1)
        else:
            self.action_pan(0, -1)

    def action_down_key(self) -> None:
        """Pan down when zoomed; otherwise the previous slice."""
        if self.stack is not None and self.zoom <= 1.0:
            self.step_slice(-1)
        else:
            self.action_pan(0, 1)

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        """The wheel scrolls slices."""
        if self.step_slice(1):
            event.stop()

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        """The wheel scrolls slices."""
        if self.step_slice(-1):
            event.stop()

    def set_preset(self, name: str) -> bool:
        """Switch to the preset called ``name`` (``lung``, ``bone``...); False when none is."""
        if not self.display_data:
            return False
        for i, preset in enumerate(self.display_data.presets):
            if preset.name.lower() == name.lower():
                self.preset_index = i
                self.center, self.window_width = preset.center, preset.width
                self.refresh_image()
                return True
        return False

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
        overlay = self.overlays[self.overlay_index][1] if self.overlay_index >= 0 else None
        if overlay is not None and not overlay.endswith(".npz"):
            arr = np.asarray(PILImage.open(overlay).convert("RGB"))
            return PILImage.fromarray(crop(arr, self.zoom, self.cx, self.cy))
        window = self.window
        shown = windowed(data, window.center, window.width, window.function)
        labels = self._mask_here(overlay) if overlay is not None else None
        rgb = blend_mask(shown, labels) if labels is not None else shown
        part = crop(rgb, self.zoom, self.cx, self.cy)
        image = PILImage.fromarray((np.clip(part, 0, 1) * 255).astype(np.uint8))
        return image.convert("RGB")

    def _mask_here(self, path: str) -> np.ndarray | None:
        """The slice of a mask volume overlay that belongs to the slice shown."""
        if self.stack is None:
            return None
        return mask_slice(path, self.stack.series_uid, self.stack.positions_mm[self.slice_index], self._masks)

    def fit(self) -> None:
        """Size each pane's image to its physical aspect ratio inside an equal share of the
        box (letterboxed); with companions, a label row sits above each image."""
        if not self.is_mounted:
            return
        box = self.query_one("#image-box")
        aspects = [] if self.display_data is None else [self.display_data.aspect]
        aspects += [c.display.aspect for c in self.companions]
        several = len(aspects) > 1
        box.set_class(several, "-views")
        count = max(1, len(aspects))
        avail_w = (box.content_size.width - PANE_GAP * (count - 1)) // count
        avail_h = box.content_size.height - (1 if several else 0)
        for n in range(PANES):
            pane = self.query_one(f"#pane-{n}")
            image = pane.query_one("#image" if n == 0 else f"#image-{n}")
            label = pane.query_one(".view-label", Static)
            pane.set_class(n >= len(aspects) and n > 0, "unused")
            w, h = fit_cells(aspects[n], avail_w, avail_h, cell_shape()) if n < len(aspects) else (0, 0)
            if (image.styles.width, image.styles.height) != (w, h):
                image.styles.width, image.styles.height = w, h
            label.styles.width = max(w, 1)

    def on_resize(self, event: Resize) -> None:
        """Refit after the layout settles."""
        self.call_after_refresh(self.fit)

    def refresh_image(self) -> None:
        """Redraw the image and the status line."""
        if not self.is_mounted:
            return
        image = self.query_one("#image")
        image.image = self.rendered()  # type: ignore[attr-defined]
        self.query_one("#pane-0 .view-label", Static).update(self.label)
        for n in range(1, PANES):
            companion = self.companions[n - 1] if n <= len(self.companions) else None
            pane = self.query_one(f"#pane-{n}")
            pane.query_one(f"#image-{n}").image = companion.rendered() if companion else None  # type: ignore[attr-defined]
            pane.query_one(".view-label", Static).update(companion.label if companion else "")
        self.query_one("#viewer-status", Static).update(self.status_text())
        self._show_markers()

    def _show_markers(self) -> None:
        """The orientation letters at the image's four edges (hidden without a stack whose
        orientation is known: a radiograph's header gives none)."""
        markers = self.stack.markers if self.stack is not None and self.display_data is not None else None
        for edge in ("top", "bottom", "left", "right"):
            label = self.query_one(f"#mark-{edge}", Static)
            label.set_class(markers is not None, "shown")
            label.update(getattr(markers, edge) if markers is not None else "")

    def status_text(self) -> str:
        """Caption, window (stored units when known), zoom and overlay."""
        data = self.display_data
        where = self.slice_text()
        if data is None:
            return f"{self.caption} · {where} · loading" if where else "No image selected"
        fmt = "{:.0f}" if data.stored else "{:.2f}"
        units = "" if data.stored else " (display units)"
        overlay = "" if self.overlay_index < 0 else f" · overlay {self.overlays[self.overlay_index][0]}"
        place = f" · {where}" if where else ""
        beside = f" · beside it: {', '.join(c.label for c in self.companions)}" if self.companions else ""
        return (
            f"{self.caption}{place} · {self.preset_name}: WL {fmt.format(self.center)} "
            f"WW {fmt.format(self.window_width)}{units} · zoom {self.zoom:.1f}x{overlay}{beside}"
        )

    def slice_text(self) -> str:
        """``slice 12/40 · -22.5 mm`` for a stack (the file's SliceLocation, sign kept, else its
        position along the patient axis of the slice normal), else ""."""
        if self.stack is None:
            return ""
        location = self.stack.location(self.slice_index)
        position = self.stack.positions_mm[self.slice_index] if location is None else location
        return f"slice {self.slice_index + 1}/{len(self.stack)} · {position:.1f} mm"
