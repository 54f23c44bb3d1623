"""Raw, WF and SR side by side: pyqtgraph image views placed in µm, panned and zoomed together.

Each view keeps fixed contrast levels (set by :meth:`LinkedViews.auto_contrast`, which takes
percentiles of every 8th pixel) so that showing a frame costs only the LUT lookup; its
histogram is recomputed only when :meth:`LinkedViews.update_histograms` is called (the window
does so a few times a second), never on each frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QRectF

if TYPE_CHECKING:
    from acquisition.display import DisplayFrame

__all__ = ["AUTO_CONTRAST_STEP", "ImagePanel", "LinkedViews", "contrast_levels", "sr_title"]

#: auto contrast looks at every n-th pixel in each direction
AUTO_CONTRAST_STEP = 8


def contrast_levels(image: np.ndarray, low: float = 0.1, high: float = 99.9,
                    step: int = AUTO_CONTRAST_STEP) -> tuple[float, float]:
    """Display levels from percentiles of a subsample (every ``step``-th pixel)."""
    sample = np.asarray(image[::step, ::step], dtype=np.float32)
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def sr_title(frame: DisplayFrame) -> str:
    """Return the SR view's title: the set's trust, and what is shown when it is low."""
    if frame.trust is None:
        return "SR"
    title = f"SR · trust {frame.trust:.2f}"
    if frame.trust_low:
        title += f" · LOW: {frame.shown} shown" if frame.shown != "sr" else " · LOW"
    return title


class ImagePanel:
    """One titled view: an ImageItem in a PlotItem with µm axes, and its histogram/LUT."""

    def __init__(self, layout: pg.GraphicsLayoutWidget, title: str, col: int) -> None:
        self.title = title
        self.plot: pg.PlotItem = layout.addPlot(row=0, col=col, title=title)
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        for side, name in (("bottom", "x"), ("left", "y")):
            self.plot.setLabel(side, name, units="µm")
            self.plot.getAxis(side).enableAutoSIPrefix(False)  # always µm, never mµm
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setAutoDownsample(False)
        self.plot.addItem(self.item)
        self.histogram = pg.HistogramLUTItem(image=self.item, orientation="horizontal")
        # the histogram follows the image only when asked (a limited rate), not per frame
        self.item.sigImageChanged.disconnect(self.histogram.imageChanged)
        layout.addItem(self.histogram, row=1, col=col)
        self.levels: tuple[float, float] | None = None
        self.image: np.ndarray | None = None
        self.frames_shown = 0
        self._rect: tuple[int, int, float] | None = None
        self._histogram_stale = False

    def show(self, image: np.ndarray, pixel_um: float) -> None:
        """Show ``image`` (2-D) with pixels of ``pixel_um`` µm, at the panel's fixed levels."""
        if self.levels is None:
            self.levels = contrast_levels(image)
        self.image = image
        self.item.setImage(image, autoLevels=False, levels=self.histogram.getLevels()
                           if self.frames_shown else self.levels)
        if self.frames_shown == 0:
            self.histogram.setLevels(*self.levels)
        height, width = image.shape
        rect = (height, width, pixel_um)
        if rect != self._rect:
            self._rect = rect
            self.item.setRect(QRectF(0.0, 0.0, width * pixel_um, height * pixel_um))
        self.frames_shown += 1
        self._histogram_stale = True

    def set_title(self, title: str) -> None:
        """Show ``title`` above the view (only when it changes)."""
        if title != self.title:
            self.title = title
            self.plot.setTitle(title)

    def auto_contrast(self) -> None:
        """Set the levels from the shown image's percentiles (nothing before an image)."""
        if self.image is None:
            return
        self.levels = contrast_levels(self.image)
        self.histogram.setLevels(*self.levels)
        self.item.setLevels(self.levels)

    def update_histogram(self) -> None:
        """Recompute the histogram if an image was shown since the last time."""
        if self._histogram_stale and self.image is not None:
            self._histogram_stale = False
            self.histogram.imageChanged(autoLevel=False)


class LinkedViews(pg.GraphicsLayoutWidget):
    """Raw (the current pattern frame), WF and SR views, linked in µm."""

    def __init__(self) -> None:
        super().__init__()
        self.raw = ImagePanel(self, "raw", 0)
        self.wf = ImagePanel(self, "WF", 1)
        self.sr = ImagePanel(self, "SR", 2)
        self.ci.layout.setRowStretchFactor(0, 4)
        for panel in (self.wf, self.sr):
            panel.plot.setXLink(self.raw.plot)
            panel.plot.setYLink(self.raw.plot)

    @property
    def panels(self) -> tuple[ImagePanel, ImagePanel, ImagePanel]:
        """The raw, WF and SR panels."""
        return self.raw, self.wf, self.sr

    def auto_contrast(self) -> None:
        """Set each panel's levels from its shown image."""
        for panel in self.panels:
            panel.auto_contrast()

    def update_histograms(self) -> None:
        """Recompute each panel's histogram where a new image was shown."""
        for panel in self.panels:
            panel.update_histogram()

    def fit(self) -> None:
        """Zoom to the raw frame (the others follow)."""
        self.raw.plot.autoRange()
