"""Image files as pages: PNG, JPEG, and TIFF (each frame a page)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from docvlm.datamodel import Page, SourceDoc
from docvlm.errors import InputError
from docvlm.render.base import RenderedPage, Renderer

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# Refuse to decode beyond this even before downscaling (PIL's own guard is 179 MP).
HARD_PIXEL_LIMIT = 500_000_000
_ASSUMED_DPI = 150.0


class ImageRenderer(Renderer):
    """Opens image files with Pillow; giant images are scaled down to ``max_pixels``."""

    name = "image"

    def _open(self, src: SourceDoc) -> Image.Image:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = HARD_PIXEL_LIMIT
        try:
            img = Image.open(src.path)
            img.size  # noqa: B018 - forces header parsing
        except Image.DecompressionBombError as exc:
            raise InputError(f"{src.path}: image too large to decode ({exc})") from exc
        except Exception as exc:
            raise InputError(f"{src.path}: unreadable image ({exc})") from exc
        return img

    def page_count(self, src: SourceDoc) -> int:
        img = self._open(src)
        try:
            return getattr(img, "n_frames", 1)
        finally:
            img.close()

    def _frame(self, src: SourceDoc, img: Image.Image, index: int) -> Image.Image:
        from PIL import Image, ImageOps

        try:
            img.seek(index)
            if img.mode in ("I;16", "I;16B", "I", "F"):
                frame = ImageOps.autocontrast(
                    img.convert("I").point(lambda v: v / 256).convert("L")
                )
            else:
                frame = img.copy()
            if frame.width * frame.height > self.options.max_pixels:
                scale = (self.options.max_pixels / (frame.width * frame.height)) ** 0.5
                size = (max(int(frame.width * scale), 1), max(int(frame.height * scale), 1))
                frame.draft("RGB", size)  # cheap JPEG decode at reduced size
                frame = frame.resize(size, Image.Resampling.BILINEAR)
            if frame.mode == "RGBA" or frame.mode == "LA" or "transparency" in frame.info:
                rgba = frame.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                frame = Image.alpha_composite(white, rgba)
            frame = frame.convert("RGB")
            frame.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InputError(
                f"{src.path}: image data damaged at frame {index + 1} ({exc})"
            ) from exc
        if index == 0:
            # EXIF orientation from phone photos
            frame = ImageOps.exif_transpose(frame)
        return frame

    def iter_pages(self, src: SourceDoc) -> Iterator[RenderedPage]:
        img = self._open(src)
        try:
            frames = getattr(img, "n_frames", 1)
            if self.options.max_pages:
                frames = min(frames, self.options.max_pages)
            dpi = float((img.info.get("dpi") or (_ASSUMED_DPI,))[0] or _ASSUMED_DPI)
            for index in range(frames):
                frame = self._frame(src, img, index)
                page = Page(number=index + 1, width=frame.width, height=frame.height, dpi=dpi)
                yield RenderedPage(page=page, image=frame)
        finally:
            img.close()

    def render_page(self, src: SourceDoc, number: int, dpi: int | None = None) -> Image.Image:
        img = self._open(src)
        try:
            return self._frame(src, img, number - 1)
        finally:
            img.close()
