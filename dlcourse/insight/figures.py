"""The figures of ``dlcourse report``, drawn with matplotlib as PNGs the page embeds (no file beside it).

Each function returns an :class:`Image` (its alt text and base64 PNG); the
templates in ``templates/`` place it (``report_macros.html.j2``'s ``figure``).
"""

from __future__ import annotations

import base64
import io
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Image:
    alt: str
    png: str  # base64


def figure(draw, width: float = 6.4, height: float = 3.2) -> Image:
    """The figure ``draw(axes)`` makes (it returns the title, the image's alt text)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    drawing = Figure(figsize=(width, height), dpi=100)
    axes = drawing.add_subplot()
    title = draw(axes)
    drawing.tight_layout()
    buffer = io.BytesIO()
    drawing.savefig(buffer, format="png")
    return Image(title or "figure", base64.b64encode(buffer.getvalue()).decode())


def histogram(values, maximum, title, xlabel, mark=None) -> Image:
    def draw(axes):
        bins = max(5, min(20, len(set(values)) + 1))
        axes.hist(values, bins=bins, range=(0, maximum) if maximum else None, color="#4878a8", edgecolor="white")
        if mark is not None:
            axes.axvline(mark, color="#c0392b", linestyle="--", label=f"cut-off {mark:.2f}")
            axes.legend()
        axes.set_xlabel(xlabel)
        axes.set_ylabel("count")
        axes.set_title(title)
        return title
    return figure(draw)


def item_figure(items) -> Image:
    """Per graded item (:class:`dlcourse.insight.report.Item`): mean, share at full marks, discrimination."""
    def draw(axes):
        names = [i.grade_id for i in items]
        ys = range(len(items))
        axes.barh([y + 0.2 for y in ys], [(i.mean or 0) / i.max_score if i.max_score else 0 for i in items],
                  height=0.4, color="#4878a8", label="mean score / max")
        axes.barh([y - 0.2 for y in ys], [i.full_share or 0 for i in items], height=0.4, color="#8fbf6f",
                  label="share at full marks")
        axes.scatter([i.discrimination if i.discrimination is not None else 0 for i in items], list(ys),
                     color="#c0392b", marker="D", zorder=3, label="discrimination (r with rest)")
        axes.set_yticks(list(ys), names)
        axes.invert_yaxis()
        axes.set_xlim(-1, 1.05)
        axes.axvline(0, color="grey", linewidth=0.5)
        axes.legend(loc="lower left", fontsize="small")
        axes.set_title("graded items")
        return "graded items"
    return figure(draw, height=max(2.5, 0.45 * len(items) + 1.2))


def course_figure(assignments: list[str], shares: dict[str, list[float]]) -> Image:
    """Each student's share of the points per assignment, with the median and the mean."""
    def draw(axes):
        xs = range(len(assignments))
        for a_index, a in enumerate(assignments):
            axes.scatter([a_index] * len(shares[a]), shares[a], color="#4878a8", alpha=0.4, s=12)
        axes.plot(list(xs), [statistics.median(shares[a]) if shares[a] else 0 for a in assignments],
                  color="#c0392b", marker="o", label="median")
        axes.plot(list(xs), [statistics.fmean(shares[a]) if shares[a] else 0 for a in assignments],
                  color="#e69f00", marker="s", linestyle="--", label="mean")
        axes.set_xticks(list(xs), assignments, rotation=30, ha="right")
        axes.set_ylim(-0.05, 1.05)
        axes.set_ylabel("share of points")
        axes.legend()
        axes.set_title("the class over the assignments")
        return "the class over the assignments"
    return figure(draw, height=3.6)
