"""Human-readable summaries, laid out like import_logs.py's so its users find their numbers."""

from __future__ import annotations

from ..vocabulary import BOTS, FILTERED, HTTP_ERRORS, HTTP_REDIRECTS, STATIC

_IGNORED_LABELS = (
    (HTTP_ERRORS, "HTTP errors"),
    (HTTP_REDIRECTS, "HTTP redirects"),
    (FILTERED, "filtered log lines (--exclude-path, hosts)"),
    (BOTS, "requests done by bots"),
    (STATIC, "requests to static resources"),
)


def totals(results) -> dict:
    """Add up per-file results into one summary dict (the ``--json`` shape)."""
    out = {
        "files": [r.as_dict() for r in results],
        "lines_total": sum(r.lines_total for r in results),
        "tracked": sum(r.tracked for r in results),
        "downloads": sum(r.downloads for r in results),
        "ignored": {},
        "invalid": sum(r.invalid for r in results),
        "delivered": sum(r.delivered for r in results),
        "already_delivered": sum(r.already_delivered for r in results),
        "already_present": sum(r.already_present for r in results),
        "rejected": sum(r.rejected for r in results),
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    for key, _label in _IGNORED_LABELS:
        out["ignored"][key] = sum(r.ignored.get(key, 0) for r in results)
    out["lines_per_second"] = round(out["lines_total"] / out["seconds"], 1) if out["seconds"] else 0.0
    statuses = {r.status for r in results}
    out["status"] = statuses.pop() if len(statuses) == 1 else "mixed"
    out["ok"] = all(r.complete for r in results)
    return out


def render_text(summary: dict) -> str:
    lines = []
    samples = [(f["path"], s) for f in summary["files"] for s in f["invalid_samples"]]
    if samples:
        lines += ["Invalid log lines", "-----------------"]
        for path, (line_no, reason, text) in samples[:10]:
            lines.append(f"  {path}:{line_no} ({reason}): {text}")
        lines.append("")
    ignored_total = sum(summary["ignored"].values())
    lines += [
        "Logs import summary",
        "-------------------",
        f"    {summary['lines_total']} lines read",
        f"    {summary['tracked']} requests tracked ({summary['downloads']} downloads)",
        f"    {summary['delivered']} requests delivered in this run"
        + (f" ({summary['already_present']} of them found already in Matomo: sent by a run that was "
           "interrupted, or committed after a request timed out)" if summary.get("already_present") else ""),
        f"    {summary['already_delivered']} requests already delivered by an earlier run (skipped)",
        f"    {summary['rejected']} requests rejected by Matomo",
        f"    {ignored_total + summary['invalid']} requests ignored:",
        f"        {summary['invalid']} invalid log lines",
    ]
    for key, label in _IGNORED_LABELS:
        lines.append(f"        {summary['ignored'][key]} {label}")
    lines += ["", "Files", "-----"]
    for f in summary["files"]:
        message = f" — {f['message']}" if f["message"] else ""
        lines.append(f"    {f['path']}: {f['status']} ({f['sink']}){message}")
    lines += [
        "",
        "Performance summary",
        "-------------------",
        f"    Total time: {summary['seconds']:.1f} seconds",
        f"    Lines read per second: {summary['lines_per_second']:,.0f}",
    ]
    return "\n".join(lines)
