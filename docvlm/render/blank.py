"""A cheap test for blank pages, so detection and OCR can skip them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: the page is looked at no larger than this on its long side (area-averaged)
_PREVIEW_SIDE = 512
#: a preview pixel this far from the page's background grey counts as ink
_INK_DELTA = 24
#: a page with at most this many ink pixels in its preview is blank
_MAX_INK_PIXELS = 2


def is_blank(image: np.ndarray) -> bool:
    """True when a page image holds no marks at all (white, black or one flat colour).

    The page is area-averaged down to a small preview, so a thin stroke still darkens its
    preview pixel; a speck of scanner dust may make a page count as not blank, which only
    costs the OCR that would have run anyway. Takes a few milliseconds on a full page.
    """
    import cv2
    import numpy as np

    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        return True
    h, w = image.shape[:2]
    scale = min(1.0, _PREVIEW_SIDE / max(h, w))
    # stride first on huge pages so that the averaging itself stays cheap
    step = max(1, int(1 / scale) // 4)
    sample = np.ascontiguousarray(image[::step, ::step])
    if sample.ndim == 3 and sample.dtype == np.uint8 and sample.shape[2] in (3, 4):
        # OpenCV's integer conversion: numpy's float mean over a full page took ~70 ms
        code = cv2.COLOR_RGB2GRAY if sample.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        grey = cv2.cvtColor(sample, code)
    elif sample.ndim == 3:
        grey = sample[:, :, :3].mean(axis=2, dtype=np.float32)
    else:
        grey = sample
    grey = np.ascontiguousarray(grey, dtype=np.float32)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    background = float(np.median(grey))
    ink = int(np.count_nonzero(np.abs(grey - background) > _INK_DELTA))
    return ink <= _MAX_INK_PIXELS
