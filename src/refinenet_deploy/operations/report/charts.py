"""The report's charts (matplotlib, the ``report`` extra): p50 latency as horizontal bars on a log scale, one panel
per model/input size/batch, labelled with the speed-up against PyTorch on the same device; and mIoU drop against
latency, each point numbered and keyed beside the chart."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from .rows import ReportRow

CHART_NAMES = ("latency", "accuracy_vs_latency", "sqnr")
CHART_CAPTIONS = {
    "latency": "p50 latency per model, input size and batch, on a log scale (every bar readable next to PyTorch's); "
    "the label after each bar is its speed-up against PyTorch on the same device. Colour: runtime.",
    "accuracy_vs_latency": "mIoU drop against PyTorch versus p50 latency; each point is numbered, the key beside "
    "the chart names it. Colour: runtime; marker: model.",
    "sqnr": "SQNR against PyTorch per block along the network's depth (parity --localize), one line per artifact; "
    "a fall marks the block where the deployed model departs.",
}

RUNTIME_COLORS = {"torch": "#8c8c8c", "onnxruntime": "#4c72b0", "openvino": "#55a868", "tensorrt": "#c44e52"}


def chart_label(r: ReportRow) -> str:
    """The y label of a bar: device (whole), runtime, precision and timing kind."""
    return f"{r.device} | {r.runtime} {r.precision} | {r.timing}"


def _model_title(group: tuple[Any, ...]) -> str:
    arch, classes, (h, w), batch = group
    return f"{arch}" + (f", {classes} classes" if classes else "") + f", {h}x{w}, batch {batch}"


def render_charts(rows: Sequence[ReportRow]) -> dict[str, bytes]:
    """PNG bytes: p50 latency as horizontal bars, one panel per model/input size/batch (each panel its own
    scale, the figure sized by the number of rows); and mIoU drop against latency."""
    matplotlib = _matplotlib()
    import matplotlib.pyplot as plt

    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):  # a "$" in a name is just a "$"
        return _render_charts(rows, matplotlib, plt)


def _render_charts(rows: Sequence[ReportRow], matplotlib: Any, plt: Any) -> dict[str, bytes]:
    charts: dict[str, bytes] = {}
    timed = [r for r in rows if r.p50_ms is not None]
    groups: dict[Any, list[ReportRow]] = {}
    for r in timed:
        groups.setdefault(r.group, []).append(r)
    if timed:
        charts["latency"] = _latency_chart(timed, groups, matplotlib, plt)
    if any(r.miou_drop_points is not None for r in timed):
        charts["accuracy_vs_latency"] = _accuracy_chart(groups, matplotlib, plt)
    return charts


def _latency_chart(timed: list[ReportRow], groups: dict[Any, list[ReportRow]], matplotlib: Any, plt: Any) -> bytes:
    """One panel of horizontal bars per model group, each its own log scale; the figure sized by the rows."""
    longest = max(len(chart_label(r)) for r in timed)
    width = min(22.0, 7.0 + 0.065 * longest)
    height = 0.9 + 0.3 * len(timed) + 0.75 * len(groups)
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(width, height),
        squeeze=False,
        gridspec_kw={"height_ratios": [len(g) + 1.2 for g in groups.values()]},
    )
    for ax, (group, members) in zip(axes[:, 0], groups.items()):
        _latency_panel(ax, group, members, matplotlib)
    used = {r.runtime for r in timed}
    handles = [matplotlib.patches.Patch(color=c, label=k) for k, c in RUNTIME_COLORS.items() if k in used]
    fig.legend(handles=handles, loc="upper right", fontsize=7, ncols=len(handles) or 1)
    fig.suptitle("Latency per model, input size and batch (lower is better)", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
    png = _png(fig)
    plt.close(fig)
    return png


def _latency_panel(ax: Any, group: Any, members: list[ReportRow], matplotlib: Any) -> None:
    y = range(len(members))
    values = [m.p50_ms for m in members]
    ax.barh(y, values, color=[RUNTIME_COLORS.get(m.runtime, "#937860") for m in members])
    ax.set_yticks(list(y), [chart_label(m) for m in members], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")  # PyTorch can be 100x slower: on a linear axis every other bar is a sliver
    ax.set_xlim(min(values) / 1.5, max(values) * 6)  # room for the labels after the bars
    _plain_log_ticks(ax, matplotlib)
    for i, m in enumerate(members):
        if i and m.device != members[i - 1].device:  # a rule between devices
            ax.axhline(i - 0.5, color="#bbb", lw=0.6)
        speed = "  baseline" if m.is_baseline else f"  {m.speedup:.2f}x" if m.speedup is not None else ""
        text = f"{m.p50_ms:.2f} ms{speed}"
        ax.annotate(text, (m.p50_ms, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_title(_model_title(group) if group else "model or input size not recorded", fontsize=9)
    ax.set_xlabel("p50 latency (ms, log scale); label: speed-up vs PyTorch on the same device", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def _accuracy_chart(groups: dict[Any, list[ReportRow]], matplotlib: Any, plt: Any) -> bytes:
    """mIoU drop against p50 (log scale): colour the runtime, marker the model, each point numbered and keyed."""
    fig, ax = plt.subplots(figsize=(11, 5))
    model_handles, key = _accuracy_points(ax, groups, matplotlib)
    both = [m for members in groups.values() for m in members if m.miou_drop_points is not None]
    ax.axhline(0, color="#999", lw=0.8)
    xs = [m.p50_ms for m in both]
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    _plain_log_ticks(ax, matplotlib)
    ys = [m.miou_drop_points for m in both]
    pad = max(0.05, (max(ys) - min(ys)) * 0.15)
    ax.set_ylim(min(min(ys), 0) - pad, max(max(ys), 0) + pad)
    ax.set_xlabel("p50 latency (ms, log scale)")
    ax.set_ylabel("mIoU drop vs PyTorch (points)")
    ax.set_title("Accuracy vs latency (colour: runtime; marker: model)")
    used = {m.runtime for m in both}
    colours = [matplotlib.patches.Patch(color=c, label=r) for r, c in RUNTIME_COLORS.items() if r in used]
    ax.legend(  # one legend (a second one would fall outside the saved image): colours, markers, the points
        handles=colours + model_handles + key, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    fig.tight_layout(rect=(0, 0, 0.6, 1))  # the legends beside the axes stay inside the figure
    png = _png(fig)
    plt.close(fig)
    return png


def _accuracy_points(ax: Any, groups: dict[Any, list[ReportRow]], matplotlib: Any) -> tuple[list[Any], list[Any]]:
    """Scatter every row with an mIoU drop; returns the legend entries (one per model, one per numbered point)."""
    markers = "os^Dvp*hX"
    key: list[Any] = []  # legend entries: the number of each point and what it is
    model_handles = []
    n = 0
    for k, (group, members) in enumerate(groups.items()):
        pts = [m for m in members if m.miou_drop_points is not None]
        if not pts:
            continue
        marker = markers[k % len(markers)]
        ax.scatter(
            [m.p50_ms for m in pts],
            [m.miou_drop_points for m in pts],
            marker=marker,
            s=40,
            c=[RUNTIME_COLORS.get(m.runtime, "#937860") for m in pts],
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
        )
        title = _model_title(group) if group else "model?"
        model_handles.append(matplotlib.lines.Line2D([], [], marker=marker, ls="", color="#555", label=title))
        for m in pts:
            n += 1
            ax.annotate(
                str(n),
                (m.p50_ms, m.miou_drop_points),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                annotation_clip=True,  # a number never leaves the axes
            )
            label = f"{n}: {m.runtime} {m.precision} ({m.device_kind}, {m.timing})"
            key.append(matplotlib.lines.Line2D([], [], ls="", label=label))
    return model_handles, key


def _plain_log_ticks(ax: Any, matplotlib: Any) -> None:
    """Tick labels of a log axis as plain numbers (1, 10, 100 ms): with math text off (names may hold '$'), the
    default labels would print as raw '$\\mathdefault{10^{2}}$'."""
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:g}"[0] in "25" else "")
    )
    ax.tick_params(axis="x", which="minor", labelsize=6)


def _matplotlib() -> Any:
    from ..._optional import require

    matplotlib = require("matplotlib", extra="report")
    matplotlib.use("Agg")
    import matplotlib.lines  # noqa: F401  (legend entries)
    import matplotlib.patches  # noqa: F401  (legend patches)
    import matplotlib.ticker  # noqa: F401  (plain log-axis labels)

    return matplotlib


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # long device names are never cut
    return buf.getvalue()
