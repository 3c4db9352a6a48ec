"""Server-side SVG charts: self-contained, no script, every text escaped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

from engagements.billing import MonthlyCost, format_money
from engagements.dossier import MilestoneLine, QuarterHours

WIDTH = 1000
"""Drawn at this many pixels and shrunk to fit narrower pages (never blown up)."""


def _svg(height: int, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(label)}" '
        f'class="chart"><title>{escape(label)}</title>{"".join(body)}</svg>'
    )


def _ticks(first: dt.date, last: dt.date) -> list[tuple[dt.date, str]]:
    """Mondays over a short span, first days of months over a long one."""
    if (last - first).days <= 120:
        day = first + dt.timedelta(days=-first.weekday() % 7)
        return [
            (day + dt.timedelta(weeks=w), f"{day + dt.timedelta(weeks=w):%d %b}")
            for w in range((last - day).days // 7 + 1)
        ]
    step = max(1, round((last - first).days / 30 / 10))
    ticks, index = [], first.year * 12 + first.month  # the month after ``first``
    while (day := dt.date(index // 12, index % 12 + 1, 1)) <= last:
        ticks.append((day, f"{day:%b %Y}"))
        index += step
    return ticks


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def timeline(lines: Sequence[MilestoneLine], today: dt.date) -> Markup:
    """Each milestone on a time axis: due (diamond) and done (dot), lateness as a bar."""
    if not lines:
        return _svg(40, "No milestones yet", [_text(10, 25, "No milestones planned yet.", "muted")])
    left, right, row, top = 340, 20, 22, 30
    days = [today]
    for m in lines:
        days += [d for d in (m.due, m.done_at.date() if m.done_at else None) if d]
    first, last = min(days) - dt.timedelta(days=3), max(days) + dt.timedelta(days=3)
    span = (last - first).days or 1

    def x(day: dt.date) -> float:
        return left + (WIDTH - left - right) * (day - first).days / span

    height = top + row * len(lines) + 10
    body = [f'<line x1="{left}" y1="{top - 8}" x2="{WIDTH - right}" y2="{top - 8}" class="axis"/>']
    for tick, label in _ticks(first, last):
        if x(tick) + 50 > WIDTH:
            continue  # no room for its label
        body.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 12}" x2="{x(tick):.1f}" '
            f'y2="{height - 6}" class="grid"/>'
        )
        body.append(_text(x(tick) + 3, top - 14, label, "tick"))
    body.append(
        f'<line x1="{x(today):.1f}" y1="{top - 12}" x2="{x(today):.1f}" '
        f'y2="{height - 6}" class="today"><title>today {today}</title></line>'
    )
    for i, m in enumerate(lines):
        y = top + row * i + row / 2
        state = "done" if m.done else ("overdue" if m.overdue_days else "pending")
        if m.done and m.late_days:
            state = "late"
        title = m.title if len(m.title) <= 50 else m.title[:49] + "…"
        body.append(_text(left - 8, y + 4, title, f"label {state}", "end"))
        if m.due and m.done_at and m.late_days:
            body.append(
                f'<line x1="{x(m.due):.1f}" y1="{y}" x2="{x(m.done_at.date()):.1f}" '
                f'y2="{y}" class="bar late"/>'
            )
        elif m.due and m.overdue_days:
            body.append(
                f'<line x1="{x(m.due):.1f}" y1="{y}" x2="{x(today):.1f}" y2="{y}" '
                'class="bar overdue"/>'
            )
        if m.due:
            cx = x(m.due)
            body.append(
                f'<path d="M{cx:.1f} {y - 6}l6 6l-6 6l-6 -6z" class="due {state}">'
                f"<title>{escape(m.title)}: due {m.due}</title></path>"
            )
        if m.done_at:
            body.append(
                f'<circle cx="{x(m.done_at.date()):.1f}" cy="{y}" r="5" class="dot {state}">'
                f"<title>{escape(m.title)}: done {m.done_at:%Y-%m-%d} by "
                f"{escape(m.done_by or '')}</title></circle>"
            )
    return _svg(height, "Milestones: due dates and completions", body)


def costs(
    months: Sequence[MonthlyCost], threshold_pct: Decimal, estimate: Decimal | None
) -> Markup:
    """Monthly cost bars; over each, the alert limit (the month before plus the threshold)."""
    if not months:
        return _svg(
            40, "No costs recorded", [_text(10, 25, "No monthly cost recorded yet.", "muted")]
        )
    currency = months[-1].currency
    months = [m for m in months if m.currency == currency]
    by_month = {m.month: m for m in months}
    factor = 1 + threshold_pct / 100
    limits = {
        m.month: by_month[m.month.previous()].amount * factor
        for m in months
        if m.month.previous() in by_month
    }
    top_value = max([m.amount for m in months] + list(limits.values()) + [estimate or 0]) or 1
    left, right, top, bottom = 80, 20, 15, 40
    height = 240
    plot = height - top - bottom
    slot = (WIDTH - left - right) / len(months)

    def y(value: Decimal) -> float:
        return top + plot * float(1 - value / top_value)

    body = []
    for i in range(5):
        value = top_value * i / 4
        body.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{WIDTH - right}" '
            f'y2="{y(value):.1f}" class="grid"/>'
        )
        body.append(
            _text(left - 6, y(value) + 4, format_money(value.quantize(1), currency), "tick", "end")
        )
    for i, m in enumerate(months):
        x0 = left + slot * i + slot * 0.15
        width = slot * 0.7
        limit = limits.get(m.month)
        alert = limit is not None and m.amount > limit
        body.append(
            f'<rect x="{x0:.1f}" y="{y(m.amount):.1f}" width="{width:.1f}" '
            f'height="{top + plot - y(m.amount):.1f}" class="bar-cost{" alert" if alert else ""}">'
            f"<title>{m.month}: {escape(format_money(m.amount, m.currency))}"
            f"{' (alert)' if alert else ''}</title></rect>"
        )
        if limit is not None:
            body.append(
                f'<line x1="{x0 - 3:.1f}" y1="{y(limit):.1f}" x2="{x0 + width + 3:.1f}" '
                f'y2="{y(limit):.1f}" class="limit"><title>alert above '
                f"{escape(format_money(limit.quantize(Decimal('0.01')), currency))}"
                "</title></line>"
            )
        body.append(_text(x0 + width / 2, height - bottom + 16, f"{m.month}", "tick", "middle"))
    if estimate is not None and currency == "USD":
        body.append(
            f'<line x1="{left}" y1="{y(estimate):.1f}" x2="{WIDTH - right}" '
            f'y2="{y(estimate):.1f}" class="estimate"/>'
        )
        body.append(_text(WIDTH - right, y(estimate) - 4, "contract estimate", "tick", "end"))
    legend = f"alert limit: previous month + {threshold_pct.normalize():f}%"
    body.append(_text(left, height - 6, legend, "tick limit-label"))
    return _svg(height, f"Monthly cloud costs ({currency}) with the alert limit", body)


def support(quarters: Sequence[QuarterHours]) -> Markup:
    """Image-support hours of the last quarters against the quarter's allowance."""
    left, right, row, top = 170, 60, 26, 24
    height = top + row * len(quarters) + 10
    most = max([q.used for q in quarters] + [quarters[0].allowance]) * Decimal("1.1")

    def x(hours: Decimal) -> float:
        return left + (WIDTH - left - right) * float(hours / most)

    body = []
    for i, q in enumerate(quarters):
        y = top + row * i
        body.append(_text(left - 8, y + 16, str(q.quarter), "label", "end"))
        body.append(
            f'<rect x="{left}" y="{y + 4}" width="{x(q.used) - left:.1f}" height="16" '
            f'class="bar-hours{" alert" if q.over else ""}"/>'
        )
        body.append(_text(x(q.used) + 4, y + 16, f"{q.used.normalize():f} h", "tick"))
    allowance = x(quarters[0].allowance)
    body.append(
        f'<line x1="{allowance:.1f}" y1="{top - 4}" x2="{allowance:.1f}" y2="{height - 6}" '
        f'class="limit"><title>{quarters[0].allowance} h a quarter</title></line>'
    )
    body.append(
        _text(
            allowance, top - 8, f"{quarters[0].allowance} h included", "tick limit-label", "middle"
        )
    )
    return _svg(height, "Image-support hours per quarter against the allowance", body)
