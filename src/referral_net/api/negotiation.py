"""Choosing a representation: an explicit ``f=`` query parameter first, then ``Accept``.

``f`` wins because a link or an ``<iframe src>`` cannot set headers (OGC API - Features names the
same parameter). ``Accept`` is read with its quality values (RFC 9110, section 12.5.1). Written
here rather than taken from a library: the one piece needed is picking among a handful of known
media types, and the libraries that parse ``Accept`` (werkzeug, python-mimeparse) would be a
dependency for these few lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# A media range whose quality cannot be read counts as not given.
_UNREADABLE = -1.0


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` value with their quality (1 when not given)."""
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = _UNREADABLE
        ranges.append((media.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: Sequence[tuple[str, float]]) -> float:
    """How much the client wants ``media_type``: the most specific range that matches it."""
    kind = media_type.split("/", 1)[0]
    best: tuple[int, float] | None = None
    for media, quality in ranges:
        if media == media_type:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, quality)
    return 0.0 if best is None else best[1]


def choose(offered: Mapping[str, str], *, f: str | None, accept: str | None, default: str) -> str:
    """The format to answer in: ``offered`` maps format names (``f`` values) to media types.

    ``f`` names a format directly (the caller checks it is one of ``offered``). Otherwise the
    offered media type the client rates highest wins; ties and no ``Accept`` give ``default``.
    """
    if f is not None:
        return f
    if not accept:
        return default
    ranges = _ranges(accept)
    best, best_quality = default, _quality(offered[default], ranges)
    for name, media_type in offered.items():
        quality = _quality(media_type, ranges)
        if quality > best_quality:
            best, best_quality = name, quality
    return best
