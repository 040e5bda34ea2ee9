"""The tumour response in words: the same lines in the results box, the PDF report and the notes."""

from __future__ import annotations


def _size(size) -> str:
    return f"{size.volume_ml:.1f} mL, longest axial diameter {size.longest_axial_diameter_mm:.1f} mm"


def response_lines(response) -> list:
    """One line per contrast: volume and longest axial diameter before → after, the change, how
    post was related to pre (the same words in the results box, the report and the SR)."""
    lines = []
    for record in response.responses:
        parts = [f"{record.contrast}:"]
        if record.pre is not None:
            parts.append(f"before {_size(record.pre)} ({record.pre.mask_origin or 'mask'})")
        if record.post is not None:
            parts.append(f"after {_size(record.post)}")
        if record.volume_change_percent is not None:
            parts.append(f"change {record.volume_change_percent:+.1f} % volume, "
                         f"{record.diameter_change_percent:+.1f} % diameter")
        if record.registration:
            parts.append(f"[{record.registration}]")
        lines.append(" ".join(parts) + (f"; {record.note}" if record.note else ""))
    return lines
