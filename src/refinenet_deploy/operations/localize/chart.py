"""The chart of ``parity --localize`` and of the report: SQNR (dB) along the network's depth, one line per artifact,
with each precision's threshold dashed. Pure: localize documents in, PNG bytes out (matplotlib, imported lazily;
``MissingDependencyError``, exit 4, without it)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .document import check_localize_document, is_localize_document


def localize_documents(documents: Iterable[Any]) -> list[dict[str, Any]]:
    """The localize documents among ``documents``: standalone ones (``--localize-json``) and the ``localize``
    section of a parity JSON (``parity --json --localize``); anything else is skipped."""
    found = []
    for doc in documents:
        if is_localize_document(doc):
            found.append(doc)
        elif isinstance(doc, dict) and is_localize_document(doc.get("localize")):
            found.append(doc["localize"])
    return found


def sqnr_chart(documents: Sequence[dict[str, Any]]) -> bytes:
    """PNG bytes: SQNR vs PyTorch per block, in execution order, one line per localize document (each checked with
    ``check_localize_document``; DataError for another or an unknown version). When every document has the same
    blocks the x axis names them, else it is each network's relative depth."""
    if not documents:
        raise ValueError("sqnr_chart needs at least one localize document")
    docs = [check_localize_document(d, where=f"document {i + 1}") for i, d in enumerate(documents)]
    from ..._optional import require

    matplotlib = require("matplotlib", extra="report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orders = [[b["block"] for b in d["blocks"]] for d in docs]
    same = all(o == orders[0] for o in orders)
    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):  # a "$" in a name is just a "$"
        fig, ax = plt.subplots(figsize=(max(8.0, 0.28 * len(orders[0]) + 3), 4.5))
        for d in docs:
            ys = [b["sqnr_db"] if b["sqnr_db"] is not None else math.nan for b in d["blocks"]]
            n = len(ys)
            xs = list(range(n)) if same else [i / max(1, n - 1) for i in range(n)]
            label = f"{Path(d['artifact']).name} ({d['runtime']}, {d['precision']})"
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=label)
            ax.axhline(d["threshold_sqnr_db"], linestyle="--", linewidth=0.8, color=line.get_color(), alpha=0.6)
        if same:
            ax.set_xticks(range(len(orders[0])))
            ax.set_xticklabels(orders[0], rotation=70, ha="right", fontsize=7)
        else:
            ax.set_xlabel("relative depth (networks differ: blocks not aligned)")
        ax.set_ylabel("SQNR vs PyTorch (dB)")
        ax.set_title("Block by block: SQNR along the depth (dashed: each artifact's threshold)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    return buf.getvalue()
