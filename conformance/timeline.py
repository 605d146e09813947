"""A self-contained HTML timeline of a history, written to the report when a check fails.

One row per client, one bar per operation from invocation to completion (to the right edge,
hatched, when the completion is unknown); hovering a bar shows the operation. The operations
the checker could not place are outlined in red, so the failing excerpt stands out. No
scripts or external files: the page opens from disk anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance.history import Kind, Operation, Status, per_client

WIDTH_PIXELS = 1600
ROW_PIXELS = 26
COLORS = {
    Kind.GET: "#7aa6d8",
    Kind.PUT: "#8cc47a",
    Kind.DELETE: "#d88a7a",
    Kind.COMPARE_AND_PUT: "#c7a6e0",
}


def describe(operation: Operation) -> str:
    parts = [f"#{operation.identifier} client {operation.client}: {operation.kind} {operation.key}"]
    if operation.value:
        parts.append(f"value={operation.value}")
    if operation.kind == Kind.COMPARE_AND_PUT:
        parts.append(f"if mod_revision=={operation.expected_mod_revision} -> {operation.succeeded}")
    parts.append(f"status={operation.status}")
    if operation.revision:
        parts.append(f"revision={operation.revision}")
    if operation.found is not None:
        parts.append(
            f"found={operation.found.value} (create {operation.found.create_revision}, "
            f"mod {operation.found.mod_revision}, version {operation.found.version})"
        )
    if operation.kind == Kind.DELETE and operation.status == Status.OK:
        parts.append(f"deleted={operation.deleted}")
    if operation.error:
        parts.append(f"error={operation.error}")
    return ", ".join(parts)


def render_timeline(history: Sequence[Operation], highlighted: Iterable[int], title: str) -> str:
    marked = set(highlighted)
    operations = [operation for operation in history if operation.status != Status.FAILED]
    if not operations:
        return f"<!doctype html><title>{html.escape(title)}</title><p>empty history</p>"
    start = min(operation.call_ns for operation in operations)
    end = max(operation.return_ns or operation.call_ns for operation in operations) + 1
    scale = WIDTH_PIXELS / (end - start)
    rows = []
    for row, (client, client_operations) in enumerate(sorted(per_client(operations).items())):
        bars = []
        for operation in client_operations:
            left = (operation.call_ns - start) * scale
            right = (
                WIDTH_PIXELS
                if operation.return_ns is None
                else (operation.return_ns - start) * scale
            )
            style = [
                f"left:{left:.1f}px",
                f"width:{max(2.0, right - left):.1f}px",
                f"background:{COLORS[operation.kind]}",
            ]
            if operation.return_ns is None:
                style.append(
                    "background-image:repeating-linear-gradient(45deg,#fff8 0 4px,#0000 4px 8px)"
                )
            if operation.identifier in marked:
                style.append("outline:2px solid #d00;z-index:2")
            bars.append(
                f'<div class="op" style="{";".join(style)}" title="{html.escape(describe(operation))}"></div>'
            )
        rows.append(
            f'<div class="row" style="top:{row * ROW_PIXELS}px"><span class="label">client {client}</span>'
            + "".join(bars)
            + "</div>"
        )
    height = ROW_PIXELS * len(rows) + 10
    legend = " ".join(
        f'<span style="background:{color};padding:0 6px">{kind}</span>'
        for kind, color in COLORS.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 13px sans-serif; }}
#timeline {{ position: relative; margin-left: 80px; width: {WIDTH_PIXELS}px; height: {height}px; }}
.row {{ position: absolute; left: 0; height: {ROW_PIXELS - 6}px; width: {WIDTH_PIXELS}px; }}
.label {{ position: absolute; left: -78px; }}
.op {{ position: absolute; top: 0; height: 100%; border-radius: 3px; opacity: 0.9; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(operations)} operations; hover a bar for details; red outline: operations the checker
could not place; hatched: completion unknown (indeterminate write). {legend}</p>
<div id="timeline">{"".join(rows)}</div>
</body></html>
"""


def write_timeline(
    path: Path, history: Sequence[Operation], highlighted: Iterable[int], title: str
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_timeline(history, highlighted, title))
