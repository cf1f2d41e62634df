"""Image files as pages: PNG, JPEG, and TIFF (each frame a page).

Hostile files are expected: the pixel count is read from the header and checked before any
pixel is decoded (JPEGs are decoded at a reduced size when that brings them within bounds),
every decoder failure becomes an :class:`InputError` naming the file, the frame and the
problem, a broken EXIF block is ignored, and a multi-frame TIFF keeps its good frames (a bad
frame is reported in ``warnings`` and the document ends ``partial``).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from docvlm.datamodel import Page, SourceDoc
from docvlm.errors import InputError
from docvlm.render.base import (
    RenderedPage,
    Renderer,
    decoder_problem,
    open_source,
    page_indexes,
)

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# Pillow's own bomb guard (it raises at twice this) stays above anything a JPEG's reduced
# decode can bring within bounds (JPEG caps each side at 65535); our own check, against
# ``render.max_decode_pixels``, runs on the header before decoding.
_PIL_PIXEL_GUARD = 2_200_000_000
_ASSUMED_DPI = 150.0


class ImageRenderer(Renderer):
    """Opens image files with Pillow; giant images are scaled down to ``max_pixels``."""

    name = "image"

    def _open(self, src: SourceDoc) -> Image.Image:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = _PIL_PIXEL_GUARD
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(open_source(src))
                img.size  # noqa: B018 - forces header parsing
        except Image.DecompressionBombError as exc:
            raise InputError(f"{src.path}: image too large to decode ({exc})") from exc
        except Exception as exc:  # Pillow raises many types for damaged headers
            raise InputError(f"{src.path}: unreadable image: {decoder_problem(exc)}") from exc
        return img

    def _frames(self, src: SourceDoc, img: Image.Image) -> int:
        try:
            return max(1, int(getattr(img, "n_frames", 1)))
        except Exception as exc:  # a TIFF whose frame chain is broken
            raise InputError(
                f"{src.path}: unreadable image: its frames cannot be listed "
                f"({decoder_problem(exc)})"
            ) from exc

    def page_count(self, src: SourceDoc) -> int:
        img = self._open(src)
        try:
            return self._frames(src, img)
        finally:
            img.close()

    def _frame(self, src: SourceDoc, img: Image.Image, index: int) -> Image.Image:
        """Frame ``index`` as 8-bit RGB within the pixel bounds, or an InputError."""
        from PIL import Image

        where = f"{src.path}: page {index + 1}"
        try:
            img.seek(index)
        except Exception as exc:
            raise InputError(f"{where}: frame cannot be read ({decoder_problem(exc)})") from exc
        limit = self.options.max_pixels
        w, h = img.size
        if w * h > limit and img.format in ("JPEG", "MPO"):
            # decode at 1/2, 1/4 or 1/8 of the size: the full pixels never exist in memory
            img.draft(img.mode, _fit(w, h, limit))
            w, h = img.size
        if w * h > self.options.max_decode_pixels:
            raise InputError(
                f"{where}: image is {w}×{h} = {w * h:,} pixels, more than "
                f"render.max_decode_pixels ({self.options.max_decode_pixels:,}); "
                "refused before decoding"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
                frame = _shrink(img, limit)  # before any conversion: no full-size copies
                frame = _to_rgb(frame)
        except InputError:
            raise
        except MemoryError as exc:
            raise InputError(f"{where}: out of memory decoding {w}×{h} pixels") from exc
        except Exception as exc:
            raise InputError(f"{where}: image data damaged ({decoder_problem(exc)})") from exc
        if index == 0:
            frame = _exif_transpose(src, frame, img)
        return frame

    def iter_pages(self, src: SourceDoc, pages: range | None = None) -> Iterator[RenderedPage]:
        img = self._open(src)
        try:
            frames = self._frames(src, img)
            if self.options.max_pages:
                frames = min(frames, self.options.max_pages)
            dpi = _dpi(img)
            good = 0
            for index in page_indexes(frames, pages):
                try:
                    frame = self._frame(src, img, index)
                except InputError as exc:
                    if frames == 1:
                        raise
                    # one bad frame of a multi-frame TIFF: keep the others
                    self.warnings.append(str(exc))
                    continue
                good += 1
                page = Page(number=index + 1, width=frame.width, height=frame.height, dpi=dpi)
                yield RenderedPage(page=page, image=frame)
            if not good and pages is None:
                raise InputError(f"{src.path}: none of its {frames} frames could be decoded")
        finally:
            img.close()

    def render_page(self, src: SourceDoc, number: int, dpi: int | None = None) -> Image.Image:
        img = self._open(src)
        try:
            return self._frame(src, img, number - 1)
        finally:
            img.close()


def _fit(w: int, h: int, limit: int) -> tuple[int, int]:
    """(w, h) scaled to at most ``limit`` pixels, aspect kept."""
    if w * h <= limit:
        return w, h
    scale = math.sqrt(limit / (w * h))
    return max(int(w * scale), 1), max(int(h * scale), 1)


def _shrink(img: Image.Image, limit: int) -> Image.Image:
    """The decoded frame scaled down to ``limit`` pixels in its own mode (cheap integer
    reduction first); a mode Pillow cannot scale is converted to RGB first."""
    from PIL import Image

    if img.width * img.height <= limit:
        return img
    size = _fit(img.width, img.height, limit)
    try:
        factor = int(min(img.width / size[0], img.height / size[1]))
        small = img.reduce(factor) if factor >= 2 else img
        return small.resize(size, Image.Resampling.BOX)
    except ValueError:
        return _to_rgb(img).resize(size, Image.Resampling.BOX)


def _dpi(img: Image.Image) -> float:
    try:
        dpi = float((img.info.get("dpi") or (_ASSUMED_DPI,))[0])
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return _ASSUMED_DPI
    return dpi if math.isfinite(dpi) and 10 <= dpi <= 10_000 else _ASSUMED_DPI


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: high-bit-depth and float frames are stretched to their
    own value range (a 16-bit or 0..1 float scan is not shown black), transparency is put on
    white, CMYK and palettes converted; a mode that cannot be shown is refused."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _stretch(img).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise InputError(f"pixel format {mode!r} cannot be converted to RGB ({exc})") from exc


def _stretch(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float frame as 8-bit grey over its finite value range."""
    import numpy as np
    from PIL import Image

    values = np.asarray(img, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return Image.new("L", img.size, 255)
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi <= lo:
        grey = np.full(values.shape, 255 if lo > 0 else 0, dtype=np.uint8)
    else:
        values = np.where(finite, values, lo)
        grey = ((values - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L")


def _exif_transpose(src: SourceDoc, frame: Image.Image, img: Image.Image) -> Image.Image:
    """The frame turned by its EXIF orientation (phone photos); a broken EXIF is ignored."""
    try:
        orientation = img.getexif().get(0x0112)
    except Exception as exc:  # a corrupt EXIF block must not lose a readable image
        logger.info("%s: EXIF block unreadable, ignored (%s)", src.path, exc)
        return frame
    from PIL import Image

    turn = (
        {
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90,
        }.get(orientation)
        if isinstance(orientation, int)
        else None
    )
    return frame.transpose(turn) if turn is not None else frame
