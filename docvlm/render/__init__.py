"""Rendering: documents to page images plus the PDF text layer."""

from __future__ import annotations

from docvlm.datamodel import RenderOptions, SourceDoc
from docvlm.errors import InputError
from docvlm.render.base import RenderedPage, Renderer


def get_renderer(src: SourceDoc, options: RenderOptions | None = None) -> Renderer:
    """The renderer for a document's sniffed type and the chosen PDF backend."""
    options = options or RenderOptions()
    if src.mime == "application/pdf":
        from docvlm.render.pdf import Pdf2ImageRenderer, PyMuPdfRenderer

        return (
            Pdf2ImageRenderer(options)
            if options.backend == "pdf2image"
            else PyMuPdfRenderer(options)
        )
    if src.mime.startswith("image/"):
        from docvlm.render.image import ImageRenderer

        return ImageRenderer(options)
    raise InputError(f"{src.path}: no renderer for type {src.mime}")


__all__ = ["RenderedPage", "Renderer", "get_renderer"]
