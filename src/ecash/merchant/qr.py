"""QR codes of payment requests with segno: inline SVG for the page, text for a terminal."""

from __future__ import annotations

import io

import segno


def svg(text: str) -> str:
    """An ``<svg>`` element (no XML declaration) to put inline in a page."""
    return segno.make(text, error="m").svg_inline(scale=4, border=2, dark="#000",
                                                  light="#fff", omitsize=True)


def terminal(text: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()
