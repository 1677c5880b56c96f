"""Printable return labels: ZPL II for thermal printers, or PDF for anything else.

Both lay out a 4x6 inch label: who sends it back (the customer), where it goes (the returns
location), the RMA number as a Code 128 barcode and in plain text, and the order and return
ids. Both are pure and deterministic: the same return always renders the same bytes.

ZPL is written directly rather than through a ZPL library: the ones on PyPI either pass field
data through unescaped (a ``^`` in an address would end the field and run the rest as
commands) or bring far more than a label needs. Every text field here goes through ``^FH``
hex escapes instead, and ``^CI28`` makes the printer read the data as UTF-8. PDF uses
reportlab (its Code 128 and its canvas in invariant mode, so no timestamp or random id lands in
the file); it is imported only when a PDF is asked for.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any  # reportlab ships no type hints

from schemas.common import Address
from schemas.enums import LabelFormat

DPI = 203
WIDTH_IN, HEIGHT_IN = 4, 6
WIDTH, HEIGHT = WIDTH_IN * DPI, HEIGHT_IN * DPI  # dots: 812 x 1218
MARGIN = 40
HEX_INDICATOR = "_"  # ^FH's default; itself escaped in field data
# Code 128 in ZPL treats ">" as the start of a subset switch; RMA numbers never hold one.
BARCODE_SAFE = re.compile(r"[A-Z0-9-]+")
# Font 0 at 30 dots averages under 19 dots a character: 38 fit between the margins.
MAX_CHARS = 38


@dataclass(frozen=True)
class ReturnLabel:
    """What a return label shows."""

    rma_number: str
    order_id: str
    return_id: str
    ship_from: Address  # the customer
    ship_to: Address  # the returns location


def render_label(label: ReturnLabel, label_format: LabelFormat) -> bytes:
    """The label in the configured format."""
    if label_format == LabelFormat.PDF:
        return pdf_label(label)
    return zpl_label(label)


def address_lines(address: Address) -> list[str]:
    """An address as printed, one string a line."""
    lines = [address.name, address.line1]
    if address.line2:
        lines.append(address.line2)
    lines.append(f"{address.city}, {address.region} {address.postal_code}")
    lines.append(address.country)
    return lines


# ---- ZPL ----------------------------------------------------------------------------------------


def zpl_label(label: ReturnLabel) -> bytes:
    """A ZPL II label for a 4x6 in roll at 203 dpi, UTF-8 encoded."""
    if not BARCODE_SAFE.fullmatch(label.rma_number):
        raise ValueError(f"RMA {label.rma_number!r} is not barcode-safe (A-Z, 0-9, '-')")
    inner = WIDTH - 2 * MARGIN
    out = ["^XA", "^CI28", f"^PW{WIDTH}", f"^LL{HEIGHT}", "^LH0,0"]
    out.append(f"^FO20,20^GB{WIDTH - 40},{HEIGHT - 40},4^FS")
    out.append(_text(MARGIN, 45, 56, "RETURN"))
    out.append(_text(MARGIN, 110, 28, f"Order {label.order_id}  Return {label.return_id}"))
    out.append(f"^FO20,155^GB{WIDTH - 40},0,3^FS")
    y = _address_block(out, 175, "FROM (CUSTOMER)", label.ship_from, 28)
    out.append(f"^FO20,{y + 10}^GB{WIDTH - 40},0,3^FS")
    y = _address_block(out, y + 30, "SHIP TO (RETURNS)", label.ship_to, 38)
    out.append(f"^FO20,{y + 10}^GB{WIDTH - 40},0,3^FS")
    y = max(y + 40, 780)
    # ^BY3: 3-dot modules; 14 characters of subset B take about 570 of the 732 dots.
    out.append(f"^FO{MARGIN + 40},{y}^BY3,3,200^BCN,200,N,N,N^FD{label.rma_number}^FS")
    out.append(_text(MARGIN, y + 230, 56, label.rma_number, width=inner))
    out.append("^XZ")
    return ("\n".join(out) + "\n").encode("utf-8")


def _address_block(out: list[str], y: int, title: str, address: Address, size: int) -> int:
    """A heading and the address under it; returns the y below the block."""
    out.append(_text(MARGIN, y, 24, title))
    y += 34
    for line in address_lines(address):
        out.append(_text(MARGIN + 10, y, size, line))
        y += size + 8
    return y


def _text(x: int, y: int, size: int, text: str, width: int | None = None) -> str:
    """One line of text in the scalable font, clipped to what fits, hex-escaped."""
    shown = text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."
    block = f"^FB{width},1,0,C,0" if width else ""
    return f"^FO{x},{y}^A0N,{size},{size}{block}^FH{HEX_INDICATOR}^FD{zpl_escape(shown)}^FS"


def zpl_escape(text: str) -> str:
    """Field data safe inside ``^FH^FD...^FS``: ``^``, ``~``, the hex indicator, ``\\`` (which
    ``^FB`` reads as an escape) and control characters become ``_XX`` UTF-8 byte escapes."""
    out = []
    for ch in text:
        if ch in "\r\n\t":
            ch = " "  # a line break inside one field would print as garbage
        if ch in f"^~\\{HEX_INDICATOR}" or ord(ch) < 32 or ord(ch) == 127:
            out.append("".join(f"{HEX_INDICATOR}{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


# ---- PDF ----------------------------------------------------------------------------------------


def pdf_label(label: ReturnLabel) -> bytes:
    """A one-page 4x6 in PDF: the same content, the barcode drawn as vectors."""
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.units import inch
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    # invariant: no creation date or random file id, so the same label gives the same bytes.
    # Uncompressed page content keeps the text greppable for support staff and tests.
    canvas = Canvas(
        buffer, pagesize=(WIDTH_IN * inch, HEIGHT_IN * inch), invariant=1, pageCompression=0
    )
    canvas.setTitle(f"Return label {label.rma_number}")
    top = HEIGHT_IN * inch - 0.35 * inch
    left = 0.25 * inch
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawString(left, top - 10, "RETURN")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(left, top - 26, f"Order {label.order_id}  Return {label.return_id}")
    y = _pdf_address(canvas, left, top - 52, "FROM (CUSTOMER)", label.ship_from, 10)
    y = _pdf_address(canvas, left, y - 10, "SHIP TO (RETURNS)", label.ship_to, 13)
    barcode = Code128(label.rma_number, barHeight=0.9 * inch, barWidth=1.2, quiet=True)
    barcode.drawOn(canvas, left, 0.8 * inch)
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(left, 0.45 * inch, label.rma_number)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _pdf_address(canvas: Any, x: float, y: float, title: str, address: Address, size: int) -> float:
    """A heading and the address under it; returns the y below the block."""
    canvas.setFont("Helvetica-Bold", 8)
    canvas.drawString(x, y, title)
    y -= size + 4
    canvas.setFont("Helvetica", size)
    for line in address_lines(address):
        canvas.drawString(x + 6, y, line[: MAX_CHARS + 4])
        y -= size + 3
    return y
