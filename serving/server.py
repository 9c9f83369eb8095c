"""``artcam serve MODEL...``: artcam models behind Triton Inference Server (pytriton's bundled server).

Each model becomes one Triton model named after its metadata (``artcam models`` shows the names),
driven by the same runtime task and ONNX Runtime session as ``artcam live``; pre- and
post-processing run in the server, so clients send pictures and get pictures or labels back.

Protocol (KServe v2 over HTTP and gRPC; every tensor has Triton's leading batch dim):

* inputs, one of: ``image`` UINT8 ``[-1, -1, 3]`` (a BGR frame, OpenCV's order) or ``jpeg`` BYTES
  ``[1]`` (an encoded JPEG/PNG);
* request parameters (optional): ``style`` for stylizers (a name, index or mix such as
  ``starry_night:0.7,udnie:0.3``), ``top_k`` for classifiers (default ``--top-k``);
* stylizer outputs: ``image`` UINT8 ``[-1, -1, 3]`` (BGR, the input's size);
* classifier outputs, per head H (``objects``, ``style``, ...): ``H_labels`` BYTES ``[-1]`` and
  ``H_probs`` FP32 ``[-1]``, best first;
* every model: ``server_ms`` FP32 ``[1]``, the time its batch spent in the model function (decode,
  pre-processing, inference, post-processing), so a client can split its round trip into network
  and server time;
* ``artcam_meta``: one string in (``name``), a JSON description out (``json``): the served models
  with their task, styles and heads (``name`` = ``*`` lists them all).

Dynamic batching (on unless ``--no-dynamic-batching``) stacks concurrent requests of the same frame
size into one ONNX Runtime call of up to ``--max-batch`` frames; ``--max-queue-size`` bounds the queue
(past it Triton rejects requests at once with "Exceeds maximum queue size").
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from artcam.runtime import limits
from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError, InputError, ModelError
from artcam.runtime.loading import load_model
from artcam.runtime.processing import fit_size
from artcam.runtime.tasks import Classifier, Stylizer

from . import request_errors

META_MODEL = "artcam_meta"
SERVABLE = ("stylize", "classify")


def _log(msg: str) -> None:
    print(f"artcam serve: {msg}", file=sys.stderr, flush=True)


def head_key(name: str) -> str:
    """A head's display name as a tensor-name prefix: ``objects`` -> ``objects``."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "head"


def _param(req, key: str, default=None):
    params = getattr(req, "parameters", None) or {}
    return params.get(key, default)


def decode_frames(req) -> list[np.ndarray]:
    """The BGR uint8 frames of one request (its ``image`` rows or decoded ``jpeg`` rows)."""
    data = req.data
    if "image" in data and "jpeg" in data:
        raise InputError("send either 'image' or 'jpeg', not both")
    if "image" in data:
        arr = data["image"]
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3:
            raise InputError(f"'image' must be UINT8 [N, H, W, 3], got {arr.dtype} {list(arr.shape)}")
        return [arr[i] for i in range(arr.shape[0])]
    if "jpeg" in data:
        out = []
        for i, row in enumerate(np.asarray(data["jpeg"]).reshape(len(data["jpeg"]), -1)):
            buf = row[0]
            if isinstance(buf, str):
                buf = buf.encode("latin-1")
            img = cv2.imdecode(np.frombuffer(bytes(buf), np.uint8), cv2.IMREAD_COLOR) if len(buf) else None
            if img is None:
                raise InputError(f"'jpeg' row {i} ({len(buf)} bytes) is not a decodable image")
            out.append(img)
        return out
    raise InputError("no input: send 'image' (UINT8 [N, H, W, 3], BGR) or 'jpeg' (BYTES [N, 1])")


@dataclass
class Served:
    """One artcam model as a Triton model: its name, tensors and batched infer function."""

    name: str
    task: str
    model: Any  # Stylizer | Classifier
    top_k: int = 5

    # -- description -----------------------------------------------------------------------------
    def describe(self) -> dict:
        m = self.model.meta
        d = {"name": self.name, "task": self.task, "model": str(self.model.model.path),
             "device": self.model.runner.device}
        if self.task == "stylize":
            d["styles"] = list(m.styles)
        else:
            d["heads"] = [{"head": h.head or h.name, "key": head_key(h.head or h.name), "labels": len(h.labels)}
                          for h in m.heads]
            d["top_k"] = self.top_k
        return d

    def tensors(self):
        from pytriton.model_config import Tensor

        ins = [Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3), optional=True),
               Tensor(name="jpeg", dtype=np.bytes_, shape=(1,), optional=True)]
        outs = [Tensor(name="server_ms", dtype=np.float32, shape=(1,)),
                Tensor(name=request_errors.OUTPUT, dtype=np.bytes_, shape=(1,))]
        if self.task == "stylize":
            outs.append(Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3)))
        else:
            for h in self.model.meta.heads:
                k = head_key(h.head or h.name)
                outs += [Tensor(name=f"{k}_labels", dtype=np.bytes_, shape=(-1,)),
                         Tensor(name=f"{k}_probs", dtype=np.float32, shape=(-1,))]
        return ins, outs

    # -- inference -------------------------------------------------------------------------------
    def __call__(self, requests) -> list[dict[str, np.ndarray]]:
        """pytriton's infer function: a list of requests (one Triton batch) -> one dict per request.

        Each request is checked on its own first (decodable, a size the model takes, a known style, a
        whole top_k); a bad one is answered with its own one-line 400 (``request_errors.py``) and the
        others of the batch run without it. An unexpected failure is a 500 with one line for the
        requests it touched; its traceback goes to the server's log.
        """
        t0 = time.perf_counter()
        results: list[dict[str, np.ndarray] | None] = [None] * len(requests)
        frames, owner, params = [], [], []
        for r, req in enumerate(requests):
            try:
                fs = decode_frames(req)
                p = self._check(req, fs)
            except ArtcamError as e:
                results[r] = request_errors.client_error(e)
                continue
            except Exception as e:  # a bug met by this request alone: it fails, the others run
                _log(f"{self.name}: internal error checking a request:\n{traceback.format_exc()}")
                results[r] = request_errors.error_response(f"internal error in {self.name}: {type(e).__name__}: {e}",
                                                           request_errors.INTERNAL)
                continue
            frames += fs
            owner += [r] * len(fs)
            params += [p] * len(fs)
        good = sorted(set(owner))
        if not good:
            return results  # type: ignore[return-value]
        try:
            outs = self._stylize(frames, params) if self.task == "stylize" else self._classify(frames, params)
        except Exception as e:  # a bug or a failing device, not the client's doing
            _log(f"{self.name}: internal error on a batch of {len(good)} request(s):\n{traceback.format_exc()}")
            for r in good:
                results[r] = request_errors.error_response(f"internal error in {self.name}: {type(e).__name__}: {e}",
                                                           request_errors.INTERNAL)
            return results  # type: ignore[return-value]
        ms = np.float32((time.perf_counter() - t0) * 1e3)
        for r in good:
            mine = [outs[i] for i in range(len(frames)) if owner[i] == r]
            d: dict[str, np.ndarray] = {"server_ms": np.full((len(mine), 1), ms, np.float32)}
            if self.task == "stylize":
                d["image"] = np.stack(mine)
            else:
                for key in mine[0]:
                    if key.endswith("_labels"):
                        d[key] = np.array([m[key] for m in mine], dtype=object)
                    else:
                        d[key] = np.stack([m[key] for m in mine]).astype(np.float32)
            results[r] = d
        return results  # type: ignore[return-value]

    def _check(self, req, frames: list[np.ndarray]):
        """One request's parameters, checked against its frames (:class:`InputError` if bad): the style
        weights for a stylizer, top_k for a classifier."""
        if not frames:
            raise InputError("the request holds no frames")
        if self.task == "stylize":
            st: Stylizer = self.model
            if len({f.shape for f in frames}) > 1:
                raise InputError("the 'jpeg' rows of one request decode to different sizes; "
                                 "send them as separate requests")
            h, w = frames[0].shape[:2]
            th, tw = fit_size(h, w, st.size)
            st.pre.check_size(th, tw)
            limits.check_stylize_frame(th, tw)
            return self._weights(_param(req, "style"))
        clf: Classifier = self.model
        for f in frames:
            clf.pre.check_size(*f.shape[:2])
        top_k = _param(req, "top_k", self.top_k)
        try:
            k = int(top_k)
        except (TypeError, ValueError):
            raise InputError(f"parameter top_k={top_k!r} is not a whole number") from None
        if k < 1:
            raise InputError(f"parameter top_k={k} must be at least 1")
        return k

    def _weights(self, style) -> np.ndarray | None:
        st: Stylizer = self.model
        if st.weights is None:
            if style not in (None, "", 0, "0", st.meta.name):
                raise InputError(f"model {self.name!r} holds one style; it takes no 'style' parameter")
            return None
        st.set_style(0 if style in (None, "") else str(style))
        return st.weights[0].copy()

    def _stylize(self, frames: list[np.ndarray], weights: list) -> list[np.ndarray]:
        st: Stylizer = self.model
        meta = st.meta
        out: list[np.ndarray | None] = [None] * len(frames)
        groups: dict[tuple, list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(f.shape[:2], []).append(i)
        for (h, w), idx in groups.items():
            th, tw = fit_size(h, w, st.size)
            batch = None
            for j, i in enumerate(idx):
                f = frames[i]
                if (th, tw) != (h, w):
                    f = cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA if th < h else cv2.INTER_LINEAR)
                x = st.pre(f)  # a reused buffer: copy it into the batch now
                if batch is None:
                    batch = np.empty((len(idx), *x.shape[1:]), x.dtype)
                batch[j] = x[0]
            feeds = {meta.image.name: batch}
            if meta.style is not None:
                feeds[meta.style.name] = np.stack([weights[i] for i in idx]).astype(np.float32)
            y = st.runner.infer(feeds)[meta.output.name]
            for j, i in enumerate(idx):
                img = st.post(y[j], crop=(th, tw))
                if (th, tw) != (h, w):
                    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
                out[i] = img
        return out  # type: ignore[return-value]

    def _classify(self, frames: list[np.ndarray], top_ks: list) -> list[dict]:
        clf: Classifier = self.model
        meta = clf.meta
        batch = None
        for j, f in enumerate(frames):
            x = clf.pre(f)
            if batch is None:
                batch = np.empty((len(frames), *x.shape[1:]), x.dtype)
            batch[j] = x[0]
        y = clf.runner.infer({meta.image.name: batch})
        from artcam.runtime.processing import softmax

        outs = []
        for j in range(len(frames)):
            k_req = top_ks[j]
            d = {}
            for h in meta.heads:
                v = y[h.name][j].reshape(-1)
                p = softmax(v) if h.kind == "logits" else v
                k = min(k_req, len(p))
                idx = np.argpartition(-p, k - 1)[:k]
                idx = idx[np.argsort(-p[idx])]
                key = head_key(h.head or h.name)
                d[f"{key}_labels"] = np.array([h.labels[i].encode() for i in idx], dtype=object)
                d[f"{key}_probs"] = p[idx].astype(np.float32)
            outs.append(d)
        return outs


def load_served(specs: list[str], *, device: str = "cpu", threads: int = 0, top_k: int = 5) -> list[Served]:
    """Open each model with the runtime (same checks as ``artcam live``); a bad one stops here."""
    served: list[Served] = []
    names: set[str] = set()
    try:
        for spec in specs:
            lm = load_model(spec, device=device, threads=threads)
            task = lm.meta.task
            if task not in SERVABLE:
                lm.close()
                raise ModelError(f"model {lm.meta.name!r} is a {task} model; artcam serve serves "
                                 f"{' and '.join(SERVABLE)} models")
            name = lm.meta.name
            if name in names or name == META_MODEL:
                lm.close()
                raise ModelError(f"two models are named {name!r}", "serve one of them, or rename a copy")
            names.add(name)
            model = Stylizer(lm) if task == "stylize" else Classifier(lm, top_k=top_k)
            model.warmup()
            served.append(Served(name, task, model, top_k))
    except BaseException:
        for s in served:
            s.model.close()
        raise
    return served


def meta_infer(served: list[Served]):
    table = {s.name: s.describe() for s in served}

    def infer(requests):
        res = []
        for req in requests:
            arr = req.data.get("name")
            rows = [] if arr is None else np.asarray(arr).reshape(-1)
            want = [r.decode() if isinstance(r, bytes) else str(r) for r in rows] or ["*"]
            out = []
            for w in want:
                doc = {"models": list(table.values())} if w == "*" else table.get(w, {"error": f"no model {w!r}",
                                                                                    "models": list(table)})
                out.append([json.dumps(doc).encode()])
            res.append({"json": np.array(out, dtype=object)})
        return res

    return infer


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 16
    dynamic_batching: bool = True
    max_queue_delay_us: int = 0
    max_queue_size: int = 0
    verbose: bool = False


class ArtcamTriton:
    """Start/stop a pytriton server with ``served`` models bound; ``with ArtcamTriton(...) as s:``."""

    def __init__(self, served: list[Served], opts: ServerOptions, log=_log):
        self.served, self.opts, self.log = served, opts, log
        self.triton = None
        self.log_file: Path | None = None
        self.workspace: Path | None = None

    def start(self) -> "ArtcamTriton":
        from . import stubenv

        stubenv.apply(self.log)
        request_errors.install(self.log)
        if not self.opts.verbose:
            for name in ("pytriton", "pytriton.triton", "pytriton.server", "pytriton.client", "pytriton.proxy",
                         "pytriton.models"):
                logging.getLogger(name).setLevel(logging.WARNING)
        from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor
        from pytriton.triton import Triton, TritonConfig

        o = self.opts
        if not o.verbose:  # pytriton echoes the server's log to stdout; keep it in a file instead
            fd, name = tempfile.mkstemp(prefix="artcam-serve-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        cfg = TritonConfig(http_address=o.host, http_port=o.http_port, grpc_address=o.host, grpc_port=o.grpc_port,
                           metrics_address=o.host, metrics_port=o.metrics_port, exit_timeout_secs=5,
                           log_verbose=1 if o.verbose else None, log_file=self.log_file)
        # the workspace (a copy of tritonserver, the model store) in the temp folder, not ~/.cache
        self.workspace = Path(tempfile.mkdtemp(prefix="artcam-serve-ws-"))
        self.triton = Triton(config=cfg, workspace=self.workspace / "pytriton")
        try:
            self.triton.__enter__()
            for s in self.served:
                batcher = None
                if o.dynamic_batching:
                    policy = QueuePolicy(max_queue_size=o.max_queue_size) if o.max_queue_size else None
                    batcher = DynamicBatcher(max_queue_delay_microseconds=o.max_queue_delay_us,
                                             default_queue_policy=policy)
                ins, outs = s.tensors()
                self.triton.bind(model_name=s.name, infer_func=s, inputs=ins, outputs=outs,
                                 config=ModelConfig(batching=True, max_batch_size=o.max_batch, batcher=batcher),
                                 strict=False)
            self.triton.bind(model_name=META_MODEL, infer_func=meta_infer(self.served),
                             inputs=[Tensor(name="name", dtype=np.bytes_, shape=(1,), optional=True)],
                             outputs=[Tensor(name="json", dtype=np.bytes_, shape=(1,))],
                             config=ModelConfig(batching=True, max_batch_size=8), strict=False)
            self.triton.run()
        except KeyboardInterrupt:
            self.stop()
            raise
        except Exception as e:
            tail = self.log_tail()
            self.stop()
            text = " ".join(str(e).split())[:400]
            raise ArtcamError(f"Triton Inference Server did not start: {text}" + (f" | server log: {tail}" if tail else ""),
                              "a port in use? pick others with --http-port/--grpc-port/--metrics-port; "
                              "--verbose shows the server's log") from e
        return self

    def log_tail(self, n: int = 400) -> str:
        if self.log_file is None or not self.log_file.is_file():
            return ""
        lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln[:1] in ("E", "W")]
        return " ".join(" ".join(lines[-3:]).split())[-n:]

    def alive(self) -> bool:
        return self.triton is not None and self.triton.is_alive()

    def stop(self) -> None:
        if self.triton is not None:
            t, self.triton = self.triton, None
            t.stop()
        if self.log_file is not None and not self.opts.verbose:
            self.log_file.unlink(missing_ok=True)
            self.log_file = None
        if self.workspace is not None:
            shutil.rmtree(self.workspace, ignore_errors=True)
            self.workspace = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _port(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a port number") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port {v} is outside 1..65535")
    return v


def _nonneg(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} is negative")
    return v


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str]) -> int:
    p = ArgParser(prog="artcam serve", description=(
        "Serve stylizer and classifier models through Triton Inference Server (HTTP and gRPC). "
        "Clients send BGR frames or JPEG bytes and get pictures or top-k labels back; "
        "`artcam live --remote grpc://HOST:PORT` is one such client."))
    p.add_argument("models", nargs="+", metavar="MODEL", help="shipped or user model names, or .onnx paths")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; another address, e.g. 0.0.0.0, "
                        "needs --allow-network: the server has no authentication)")
    p.add_argument("--allow-network", action="store_true", help="allow a --host other than loopback")
    p.add_argument("--http-port", type=_port, default=8000)
    p.add_argument("--grpc-port", type=_port, default=8001)
    p.add_argument("--metrics-port", type=_port, default=8002, help="Prometheus metrics (default 8002)")
    p.add_argument("--max-batch", type=_nonneg, default=16, help="largest batch one model call takes (default 16)")
    p.add_argument("--no-dynamic-batching", action="store_true", help="run every request on its own")
    p.add_argument("--max-queue-delay-us", type=_nonneg, default=0,
                   help="how long a request may wait for others to batch with (default 0: batch what is queued)")
    p.add_argument("--max-queue-size", type=_nonneg, default=0,
                   help="requests queued per model before new ones are rejected (default 0 = unbounded)")
    p.add_argument("--top-k", type=_nonneg, default=5, help="labels per head for classifiers (default 5)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="ONNX Runtime device for the models (default cpu)")
    p.add_argument("--threads", type=_nonneg, default=0, help="ONNX Runtime intra-op threads (0 = its default)")
    p.add_argument("--duration-s", type=float, default=None, help="stop by itself after this many seconds")
    p.add_argument("--verbose", action="store_true", help="Triton's and pytriton's own logs")
    a = p.parse_args(argv)
    if not is_loopback(a.host) and not a.allow_network:
        raise ArtcamError(f"--host {a.host} would expose the server beyond this machine",
                          "add --allow-network to do that on purpose (there is no authentication)")
    if a.top_k < 1:
        raise ArtcamError("--top-k must be at least 1")
    if a.max_batch < 1:
        raise ArtcamError("--max-batch must be at least 1")
    try:
        import pytriton  # noqa: F401
    except ImportError as e:
        raise ArtcamError(f"artcam serve needs nvidia-pytriton ({e})",
                          "install it with: pip install 'artcam[serve]'") from None
    served = load_served(a.models, device=a.device, threads=a.threads, top_k=a.top_k)
    opts = ServerOptions(a.host, a.http_port, a.grpc_port, a.metrics_port, a.max_batch,
                         not a.no_dynamic_batching, a.max_queue_delay_us, a.max_queue_size, a.verbose)
    server = ArtcamTriton(served, opts)
    try:
        server.start()
        batching = (f"dynamic batching up to {a.max_batch}, queue delay {a.max_queue_delay_us} us, "
                    f"queue {'unbounded' if not a.max_queue_size else a.max_queue_size}"
                    if opts.dynamic_batching else "no dynamic batching")
        _log(f"serving {', '.join(s.name for s in served)} ({batching})")
        _log(f"ready: http://{a.host}:{a.http_port}  grpc://{a.host}:{a.grpc_port}  "
             f"metrics http://{a.host}:{a.metrics_port}/metrics")
        deadline = None if a.duration_s is None else time.monotonic() + a.duration_s
        while deadline is None or time.monotonic() < deadline:
            if not server.alive():
                tail = server.log_tail()
                raise ArtcamError("the Triton server stopped on its own" + (f": {tail}" if tail else ""),
                                  "run again with --verbose for its whole log")
            time.sleep(0.5)
        _log(f"stopping after --duration-s {a.duration_s:g}")
    finally:
        server.stop()
        for s in served:
            s.model.close()
    return 0
