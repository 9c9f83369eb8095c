"""Compare two benchmark reports case by case and flag slow-downs beyond the measured noise.

For each case present in both, the ratio of medians new/old gets a bootstrap confidence interval
from both runs' raw samples. A case is "slower" only when the whole interval lies above
1 + threshold: the threshold covers run-to-run drift that one run's samples cannot show (CPU
frequency, other load), the interval covers the noise inside each run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .stats import bootstrap_ratio_ci, fmt_ms

DEFAULT_THRESHOLD = 0.05


@dataclass
class CaseDelta:
    id: str
    verdict: str  # slower | faster | same | new | gone | failing | fixed
    old_ms: float | None = None
    new_ms: float | None = None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _metric(r: dict, key: str) -> tuple[list, float | None]:
    """Samples and median of the compared quantity; pipeline results keep theirs per stage."""
    if key == "e2e" and "samples_ms" in r:
        return r.get("samples_ms") or [], (r.get("latency_ms") or {}).get("median")
    st = (r.get("stages") or {}).get(key) or {}
    return st.get("samples_ms") or [], st.get("median")


def compare(old: dict, new: dict, threshold: float = DEFAULT_THRESHOLD, conf: float = 0.95,
            key: str = "e2e") -> list[CaseDelta]:
    olds = {r["id"]: r for r in old["results"]}
    news = {r["id"]: r for r in new["results"]}
    out: list[CaseDelta] = []
    for cid in list(dict.fromkeys([*olds, *news])):
        o, n = olds.get(cid), news.get(cid)
        if o is None:
            out.append(CaseDelta(cid, "new", note="only in the new report"))
            continue
        if n is None:
            out.append(CaseDelta(cid, "gone", note="only in the old report"))
            continue
        if o["status"] != "ok" or n["status"] != "ok":
            if o["status"] == "ok":
                out.append(CaseDelta(cid, "failing", note=f"now {n['status']}: {n.get('reason', '')}"))
            elif n["status"] == "ok":
                out.append(CaseDelta(cid, "fixed", note=f"was {o['status']}"))
            continue
        so, mo = _metric(o, key)
        sn, mn = _metric(n, key)
        ci = bootstrap_ratio_ci(so, sn, conf=conf) if so and sn else None
        if ci is None:
            if mo and mn:
                out.append(CaseDelta(cid, "same", mo, mn, mn / mo, note="no raw samples: no noise estimate"))
            continue
        ratio, lo, hi = ci
        d = CaseDelta(cid, "same", mo, mn, ratio, lo, hi)
        if not math.isnan(lo) and lo > 1 + threshold:
            d.verdict = "slower"
        elif not math.isnan(hi) and hi < 1 / (1 + threshold):
            d.verdict = "faster"
        else:
            d.note = "within noise" if (hi - lo) > 2 * threshold or abs(ratio - 1) > threshold else ""
        out.append(d)
    return out


def regressions(deltas: list[CaseDelta]) -> list[CaseDelta]:
    return [d for d in deltas if d.verdict in ("slower", "failing")]


def table(deltas: list[CaseDelta], threshold: float = DEFAULT_THRESHOLD) -> str:
    lines = [f"comparison (new/old median latency, 95% bootstrap interval; flagged beyond +{threshold:.0%}):"]
    w = max([len(d.id) for d in deltas] + [4])
    for d in deltas:
        if d.ratio is not None:
            iv = f"[{d.low:.3f}, {d.high:.3f}]" if d.low is not None and not math.isnan(d.low) else ""
            body = f"{fmt_ms(d.old_ms, 8)} -> {fmt_ms(d.new_ms, 8)} ms  x{d.ratio:.3f} {iv}"
        else:
            body = ""
        flag = {"slower": "SLOWER", "failing": "FAILING", "faster": "faster"}.get(d.verdict, d.verdict)
        lines.append(f"  {d.id.ljust(w)}  {body}  {flag}{('  ' + d.note) if d.note else ''}".rstrip())
    return "\n".join(lines)
