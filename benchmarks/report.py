"""Benchmark documents: a versioned JSON schema, terminal table, CSV, Markdown and PNG plots.

One document per run: ``{"schema": "artcam-bench", "schema_version": 1, "kind": ..., "env": ...,
"settings": ..., "results": [...]}``. Readers refuse a newer version instead of misreading it.
matplotlib is imported only to draw plots; without it the plots are skipped with a message.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import atomic_write_text, check_writable_dir

from . import envinfo
from .stats import fmt_ms, pkey

SCHEMA = "artcam-bench"
SCHEMA_VERSION = 1
KINDS = ("model", "pipeline", "overhead")


def new_document(kind: str, settings: dict, results: list[dict], env: dict | None = None,
                 argv: list[str] | None = None, **extra: Any) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}")
    doc = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": ["artcam", "bench", *(argv or [])],
        "env": env if env is not None else envinfo.environment(settings.get("threads", 0) or 0),
        "settings": settings,
        "results": results,
    }
    doc.update(extra)
    return doc


def _json_safe(x: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _json_safe(x.item())
    return x


def dumps(doc: dict) -> str:
    return json.dumps(_json_safe(doc), indent=1, allow_nan=False) + "\n"


def validate(doc: Any, where: str = "report") -> dict:
    """Check the envelope of a benchmark document; ArtcamError saying what is wrong."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ArtcamError(f"{where} is not an artcam benchmark report (no \"schema\": \"{SCHEMA}\")",
                          "pass a JSON file written by `artcam bench --json` or `-o DIR`")
    v = doc.get("schema_version")
    if not isinstance(v, int) or v < 1:
        raise ArtcamError(f"{where} has an invalid schema_version {v!r}")
    if v > SCHEMA_VERSION:
        raise ArtcamError(f"{where} uses benchmark schema {v}, newer than this artcam reads ({SCHEMA_VERSION})",
                          "upgrade artcam")
    if doc.get("kind") not in KINDS:
        raise ArtcamError(f"{where} has unknown kind {doc.get('kind')!r}", f"expected one of {', '.join(KINDS)}")
    if not isinstance(doc.get("results"), list):
        raise ArtcamError(f"{where} has no results list")
    for r in doc["results"]:
        if not isinstance(r, dict) or "id" not in r or "status" not in r:
            raise ArtcamError(f"{where}: every result needs an id and a status")
    return doc


def load(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ArtcamError(f"benchmark report not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtcamError(f"{p} is not valid JSON ({e})", "pass a file written by `artcam bench --json`") from e
    return validate(doc, str(p))


# --- tables -------------------------------------------------------------------------------------


def _size(r: dict) -> str:
    s = r.get("imgsz")
    return f"{s[0]}x{s[1]}" if s else "-"


def _num(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _speed(r: dict) -> str:
    s = r.get("speedup_vs_baseline")
    if not s or "median" not in s:
        return ""
    if s["baseline"] == r["id"]:
        return "base"
    return f"{s['median']:.2f}x [{s['q1']:.2f}-{s['q3']:.2f}]"


def model_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the terminal/Markdown tables (ms; n/a where a part is not separate)."""
    ps = doc.get("settings", {}).get("percentiles") or [50, 90, 95, 99]
    pcols = [pkey(p) for p in ps if pkey(p) != "p50"]
    gpu = True  # H2D / compute / D2H always shown: n/a where the backend has no separate copies (CPU)
    head = ["model", "backend", "prec", "size", "batch", "min", "mean", "median", *pcols, "max"]
    if gpu:
        head += ["h2d", "compute", "d2h"]
    head += ["img/s", "GFLOP", "GFLOP/s", "speed-up (IQR)", "status"]
    rows = []
    seen = set()
    for r in doc["results"]:
        lat = r.get("latency_ms") or {}
        if r["status"] != "ok":  # one row per reason, not one per size
            key = (r.get("model"), r.get("backend"), r.get("precision"), r.get("batch"), r["status"], r.get("reason"))
            if key in seen:
                continue
            seen.add(key)
        row = [r.get("model", ""), r.get("backend", ""), r.get("precision", ""), _size(r), str(r.get("batch", ""))]
        # medians of the parts; ``compute`` on CPU is the whole run
        if r["status"] == "ok" and lat:
            row += [fmt_ms(lat.get("min")), fmt_ms(lat.get("mean")), fmt_ms(lat.get("median"))]
            row += [fmt_ms(lat.get(k)) for k in pcols] + [fmt_ms(lat.get("max"))]
            if gpu:
                row += [fmt_ms((r.get(k) or {}).get("median")) for k in ("h2d_ms", "compute_ms", "d2h_ms")]
            gf = r.get("gflops")
            row += [_num(r.get("throughput_ips")), "n/a" if gf is None else f"{gf:.3g}", _num(r.get("gflops_per_s")),
                    _speed(r), "ok"]
        else:
            row += [""] * (4 + len(pcols) + (3 if gpu else 0) + 3)
            row += ["", f"{r['status']}: {r.get('reason', '')}"]
        rows.append(row)
    return head, rows


def text_table(head: list[str], rows: list[list[str]]) -> str:
    last = len(head) - 1  # the status column is free text: no padding
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(last)]
    num = set(range(4, last))

    def line(cells):
        out = [(c.rjust(w) if i in num else c.ljust(w)) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out + [cells[last]]).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths] + ["-" * len(head[last])])] +
                     [line(r) for r in rows])


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(out)


def load_warning(env: dict) -> str:
    """A warning when other work competed for the CPUs at the start (numbers will be noisy)."""
    cpu = env.get("cpu", {})
    load, n = cpu.get("loadavg_1m"), cpu.get("usable_cpus") or cpu.get("logical_cpus")
    if load is not None and n and load > n:
        return (f"warning: load average {load} on {n} CPUs at the start: other work competes for the CPUs, "
                "expect noisy numbers (compare ratios from one run; --threads 1 suffers least)")
    return ""


def model_table(doc: dict) -> str:
    head, rows = model_rows(doc)
    env = doc.get("env", {})
    s = doc.get("settings", {})
    how = f"{s['iterations']} iterations" if s.get("iterations") else f"{s.get('duration_s')} s"
    note = (f"latency ms per batch; {how} per case after {s.get('warmup_s')} s warm-up, interleaved in up to "
            f"{s.get('rounds')} rounds; speed-up = baseline/this per round, median [IQR]")
    warn = load_warning(env)
    return f"{envinfo.one_line(env)}\n{note}\n" + (warn + "\n" if warn else "") + text_table(head, rows)


CSV_FIELDS = ["id", "model", "model_hash", "task", "backend", "provider", "device", "precision", "imgsz", "batch",
              "status", "reason", "iterations", "min", "mean", "median", "std", "PCTS", "max",
              "h2d_median", "compute_median", "d2h_median", "throughput_ips", "throughput_qps", "gflops",
              "gflops_per_s", "rel_iqr", "speedup_median", "speedup_q1", "speedup_q3", "speedup_baseline", "how"]


def model_csv(doc: dict) -> str:
    ps = doc.get("settings", {}).get("percentiles") or [50, 90, 95, 99]
    pcols = [pkey(p) for p in ps]
    fields = []
    for f in CSV_FIELDS:
        fields.extend(pcols if f == "PCTS" else [f])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in doc["results"]:
        row = {k: r.get(k) for k in fields}
        row["imgsz"] = _size(r)
        for k, v in (r.get("latency_ms") or {}).items():
            row[k] = v
        for part in ("h2d", "compute", "d2h"):
            row[f"{part}_median"] = (r.get(f"{part}_ms") or {}).get("median")
        sp = r.get("speedup_vs_baseline") or {}
        row.update(speedup_median=sp.get("median"), speedup_q1=sp.get("q1"), speedup_q3=sp.get("q3"),
                   speedup_baseline=sp.get("baseline"))
        w.writerow(_json_safe(row))
    return buf.getvalue()


def model_markdown(doc: dict) -> str:
    head, rows = model_rows(doc)
    env = doc.get("env", {})
    s = doc.get("settings", {})
    how = f"{s['iterations']} iterations" if s.get("iterations") else f"{s.get('duration_s')} s"
    lines = [
        "# artcam model benchmark", "",
        f"- command: `{' '.join(doc.get('command', []))}`",
        f"- machine: {envinfo.one_line(env)}",
        f"- when: {doc.get('created_utc')}; load average at start {env.get('cpu', {}).get('loadavg_1m', 'n/a')}",
        (f"- method: {how} per case after {s.get('warmup_s')} s warm-up; cases of one model/size/batch interleaved "
         f"in {s.get('rounds')} rounds; latency in ms per batch; speed-up = baseline/this per round, median [IQR]"),
        "- FLOPs: 2 x multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul at the benchmarked size",
        *([f"- {load_warning(env)}"] if load_warning(env) else []), "",
        markdown_table(head, rows), "",
    ]
    hashes = {r["model"]: r.get("model_hash") for r in doc["results"] if r.get("model_hash")}
    if hashes:
        lines += ["Model hashes:", ""] + [f"- {m}: `{h}`" for m, h in hashes.items()] + [""]
    return "\n".join(lines)


# --- files --------------------------------------------------------------------------------------


def write_model_reports(doc: dict, out_dir: str | Path, log=lambda m: print(m, file=sys.stderr)) -> list[Path]:
    """results.json, results.csv, results.md and PNG plots (when matplotlib is installed)."""
    out = check_writable_dir(Path(out_dir))
    written = [
        atomic_write_text(out / "results.json", dumps(doc)),
        atomic_write_text(out / "results.csv", model_csv(doc)),
        atomic_write_text(out / "results.md", model_markdown(doc)),
    ]
    written += plot_model_results(doc, out, log)
    return written


def _pyplot(log):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("bench: matplotlib is not installed: no plots (pip install 'artcam[bench]')")
        return None
    return plt


def _save_fig(fig, path: Path, plt) -> Path:
    from artcam.runtime.fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_model_results(doc: dict, out: Path, log) -> list[Path]:
    ok = [r for r in doc["results"] if r["status"] == "ok" and r.get("samples_ms")]
    if not ok:
        return []
    plt = _pyplot(log)
    if plt is None:
        return []
    written = []
    # 1. latency distribution of every case
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ok) + 1.5))
    data = [r["samples_ms"] for r in ok]
    kw = {"showfliers": True, "whis": (1, 99), "flierprops": {"markersize": 2}}
    try:  # matplotlib >= 3.10 spells it orientation=; older ones only know vert=
        ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:
        ax.boxplot(data, vert=False, **kw)
    ax.set_yticks(range(1, len(ok) + 1), [r["id"] for r in ok], fontsize=7)
    ax.invert_yaxis()  # first case on top, as in the table
    ax.set_xscale("log")
    ax.set_xlabel("latency per batch, ms (box: quartiles, whiskers: p1-p99)")
    ax.set_title("Latency distribution")
    ax.grid(True, axis="x", alpha=0.3)
    written.append(_save_fig(fig, out / "latency_distribution.png", plt))
    # 2. latency vs resolution per (model, backend, precision, batch) with at least two sizes
    curves: dict[tuple, list] = {}
    for r in ok:
        if r.get("imgsz"):
            curves.setdefault((r["model"], r["backend"], r["precision"], r["batch"]), []).append(r)
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (m, b, p, n), rs in curves.items():
            rs = sorted(rs, key=lambda r: r["imgsz"][0] * r["imgsz"][1])
            mp = [r["imgsz"][0] * r["imgsz"][1] / 1e6 for r in rs]
            med = [r["latency_ms"]["median"] for r in rs]
            lo = [r["latency_ms"]["min"] for r in rs]
            hi = [r["latency_ms"].get("p90", r["latency_ms"]["max"]) for r in rs]
            line, = ax.plot(mp, med, marker="o", label=f"{m} {b} {p} b{n}")
            ax.fill_between(mp, lo, hi, alpha=0.15, color=line.get_color())
            for x, y, r in zip(mp, med, rs):
                ax.annotate(_size(r), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("megapixels per image (log)")
        ax.set_ylabel("median latency, ms, log (band: min-p90)")
        ax.set_title("Latency vs resolution")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        written.append(_save_fig(fig, out / "latency_vs_resolution.png", plt))
    # 3. backends/precisions side by side per (model, size, batch)
    groups: dict[tuple, list] = {}
    for r in ok:
        groups.setdefault((r["model"], _size(r), r["batch"]), []).append(r)
    labels = list(dict.fromkeys((r["backend"], r["precision"]) for r in ok))  # run order: baseline first
    if len(labels) >= 1:
        import numpy as np

        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(labels)) * 0.5 + 2), 4.5))
        width = 0.8 / len(labels)
        xs = np.arange(len(groups))
        for i, lab in enumerate(labels):
            vals, errs = [], [[], []]
            for rs in groups.values():
                r = next((r for r in rs if (r["backend"], r["precision"]) == lab), None)
                med = r["latency_ms"]["median"] if r else float("nan")
                vals.append(med)
                errs[0].append(med - r["latency_ms"]["min"] if r else 0)
                errs[1].append(r["latency_ms"].get("p90", med) - med if r else 0)
            ax.bar(xs + i * width - 0.4 + width / 2, vals, width, yerr=errs, capsize=2, label=f"{lab[0]} {lab[1]}")
        ax.set_xticks(xs, [f"{m}\n{s} b{n}" for m, s, n in groups], fontsize=7)
        ax.set_ylabel("median latency, ms (bars: min..p90)")
        ax.set_title("Backends and precisions side by side")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        written.append(_save_fig(fig, out / "backends.png", plt))
    return written
