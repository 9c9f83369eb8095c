"""The one training loop of every task (classify, stylize, generate).

A task brings what differs: its recipe schema, how it builds its data and nets (``build``), one training
step (``step``), what it does after a step (evaluation, samples), what a checkpoint holds (``state`` /
``load_state``) and how a checkpoint becomes a model file (``export_checkpoint``). The skeleton does the
rest the same way for all of them:

- the command line: ``--recipe NAME|FILE`` plus ``key=value`` overrides (``recipe``), and the run flags
  ``--data --out --resume --init --no-export --quiet``;
- device, seed, torchrun's process group (DDP), one mixed-precision policy (bfloat16 autocast where the
  device has it, float16 with loss scaling on GPUs without it);
- ``--resume`` (step, optimizer, RNG and scaler continue) and ``--init`` (weights only, fresh steps), with
  the model file's provenance recording the chain;
- atomic checkpoints every ``train.ckpt_every`` steps or ``train.ckpt_minutes`` minutes, a NaN loss stopping
  the run with the last good checkpoint kept, ``train.max_steps`` pausing a run that ``--resume`` continues,
  ``train.minutes`` ending it early, and Ctrl-C/SIGTERM stopping between two steps with a checkpoint;
- the export of the finished run.

    artcam train TASK --recipe NAME [key=value ...] [--data DIR] [--out DIR] [--resume CKPT | --init CKPT]
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from artcam.runtime.cli import ArgParser
from artcam.training import common
from artcam.training.common import TrainingError
from artcam.training.recipe import load_recipe, recipe_names

# [train] keys every task has; a task's schema may change the defaults.
TRAIN_KEYS: dict[str, Any] = {
    "seed": 0, "device": "auto", "amp": False,
    "max_steps": 0,  # pause after this many steps (a checkpoint, no export; --resume continues); 0: off
    "minutes": 0.0,  # end the run (evaluate, save, export) after this much wall time; 0: no limit
    "ckpt_every": 0, "ckpt_minutes": 0.0,  # also write last.pt every N steps / M minutes (0: off)
    "log_every": 20,
}


def amp_dtype(device: torch.device, wanted: bool) -> torch.dtype | None:
    """The mixed-precision policy of every trainer: bfloat16 where the device has it (no overflow, no
    loss scaling), float16 with a GradScaler on GPUs without it, None when not asked for."""
    if not wanted:
        return None
    if device.type == "cpu" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class Task:
    """What one kind of model brings to the skeleton. Subclasses set the class attributes and override hooks."""

    kind = ""
    schema: Mapping[str, Any] = {}
    description = ""
    legacy_flags: Mapping[str, str] = {}  # old flag -> recipe key, accepted with a deprecation line
    onnx_name = "model.onnx"  # file name of the export in --out (a task may set it in build)
    export_from = "last.pt"  # the checkpoint the export reads
    images_per_step = 1

    def __init__(self, recipe: dict[str, Any]):
        self.recipe = recipe

    # -- hooks --
    def build(self, run: Run) -> None:
        """Data, nets, optimizers; check ``run.resume`` / ``run.init`` fit this recipe and load ``run.init``."""
        raise NotImplementedError

    def total_steps(self) -> int:
        raise NotImplementedError

    def begin(self, run: Run) -> None:
        """Before the first step of this process (e.g. the untrained baseline)."""

    def step(self, run: Run) -> dict[str, float]:
        """One optimisation step; returns the numbers for the progress line."""
        raise NotImplementedError

    def after_step(self, run: Run) -> None:
        """After ``run.step`` was counted: evaluation, samples (main process decides)."""

    def finish(self, run: Run) -> None:
        """After the last step of a finished (not paused) run, before the final checkpoint."""

    def state(self) -> dict[str, Any]:
        """The task's part of a checkpoint (``kind``, ``step``, RNG and provenance are added)."""
        raise NotImplementedError

    def load_state(self, ckpt: dict[str, Any]) -> None:
        raise NotImplementedError

    def data_description(self) -> str:
        return ""

    def provenance_extra(self) -> dict[str, Any]:
        return {}

    def init_extra(self, init: dict[str, Any]) -> dict[str, Any]:
        """What the provenance records of an ``--init`` checkpoint besides its own provenance."""
        return {"step": init.get("step")}

    def export_checkpoint(self, ckpt: dict[str, Any], path: Path):
        raise NotImplementedError


# --- the command line ------------------------------------------------------------------------------


def _keys(schema: Mapping[str, Any], where: str = "") -> list[str]:
    out = []
    for k, v in schema.items():
        path = f"{where}.{k}" if where else k
        out += _keys(v, path) if isinstance(v, dict) and v else [f"{path}={_toml(v)}"]
    return out


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{}" if isinstance(v, dict) else repr(v)


def recipes_for(schema: Mapping[str, Any]) -> list[str]:
    """The shipped recipes this task's schema reads."""
    names = []
    for name in recipe_names():
        try:
            load_recipe(name, schema)
        except TrainingError:
            continue
        names.append(name)
    return names


def task_parser(prog: str, description: str, example: str, schema: Mapping[str, Any]) -> ArgParser:
    keys = "\n".join(textwrap.wrap("  ".join(_keys(schema)), 110, initial_indent="  ", subsequent_indent="  "))
    p = ArgParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                  epilog=f"shipped recipes (training/recipes/): {', '.join(recipes_for(schema))}\n"
                         f"recipe keys and their defaults:\n{keys}\nexample: {example}")
    p.add_argument("--recipe", default="", help="recipe .toml file, or a shipped recipe's name")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="recipe overrides with dotted keys, e.g. train.max_steps=100 train.lr=3e-4")
    p.add_argument("--data", default="", help="data root the recipe's paths are relative to (same as "
                                              "data.root=DIR; default: $ARTCAM_DATA, else ../shared/data)")
    p.add_argument("--out", default="", help="folder for checkpoints, samples and the ONNX export (default runs/NAME)")
    p.add_argument("--resume", default="", metavar="CKPT", help="continue this checkpoint (step, optimizer, RNG)")
    p.add_argument("--init", default="", metavar="CKPT", help="start from this checkpoint's weights, fresh steps")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _legacy_overrides(argv: list[str], flags: Mapping[str, str], prog: str) -> tuple[list[str], list[str]]:
    """Old per-task flags (``--epochs 3``) -> overrides (``train.epochs=3``), one deprecation line each."""
    rest, overrides = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        flag, eq, inline = a.partition("=")
        if flag in flags:
            key = flags[flag]
            if "=" in key:  # a switch: the override it stands for
                overrides.append(key)
                i += 1
            else:
                if eq:
                    value, i = inline, i + 1
                elif i + 1 < len(argv):
                    value, i = argv[i + 1], i + 2
                else:
                    raise SystemExit(f"{prog}: error: {flag} needs a value (see `{prog} --help`)")
                overrides.append(f"{key}={value}")
            hint = key if "=" in key else f"{key}=VALUE"
            print(f"{prog}: {flag} is deprecated and goes in the next release; write {hint}", file=sys.stderr)
            continue
        rest.append(a)
        i += 1
    return rest, overrides


def parse_task_args(task_cls: type[Task], argv: list[str], example: str) -> tuple[argparse.Namespace, dict]:
    prog = f"artcam train {task_cls.kind}"
    rest, legacy = _legacy_overrides(list(argv), task_cls.legacy_flags, prog)
    p = task_parser(prog, task_cls.description, example, task_cls.schema)
    args = p.parse_intermixed_args(rest)  # overrides may come before or after the flags
    recipe = load_recipe(args.recipe or None, task_cls.schema, legacy + list(args.overrides))
    if args.data:
        recipe["data"]["root"] = args.data
    return args, recipe


# --- one run -----------------------------------------------------------------------------------------


class Run:
    """The state the skeleton keeps for a task: device, processes, step, checkpoints, provenance, AMP."""

    def __init__(self, task: Task, args: argparse.Namespace, argv: list[str]):
        self.task, self.args, self.argv = task, args, argv
        tr = task.recipe["train"]
        self.train = tr
        self.device = common.pick_device(tr["device"])
        self.rank, self.world, self.device = common.setup_distributed(self.device)
        self.main = self.rank == 0
        quiet = getattr(args, "quiet", False)
        self.verbose = self.main and not quiet
        self.out = Path(args.out or f"runs/{task.recipe.get('name') or task.kind}")
        self.amp = amp_dtype(self.device, tr["amp"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        self.step = 0
        self.saved_step = -1
        self.last_good: Path | None = None
        self.provenance: dict[str, Any] = {}
        self.resume = common.load_checkpoint(args.resume, task.kind) if args.resume else None
        self.init = common.load_checkpoint(args.init, task.kind) if args.init and self.resume is None else None
        self.t_start = time.perf_counter()
        self._last_save = self.t_start

    def log(self, *parts) -> None:
        if self.verbose:
            print(*parts, file=sys.stderr, flush=True)

    # -- helpers for a task's step --
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def optimize(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """zero_grad, backward and step through the loss scaler (a no-op scaler without float16)."""
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel when torchrun started several processes."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def all_max(self, value: float) -> float:
        """The largest ``value`` over all processes: every rank takes the same decision."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([float(value)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def check_finite(self, loss: torch.Tensor, step: int | None = None) -> None:
        """Stop every process on a NaN/inf loss (summed over ranks), keeping the last good checkpoint."""
        loss = loss.detach()
        if self.world > 1:
            import torch.distributed as dist

            loss = loss.clone()
            dist.all_reduce(loss)
        common.check_finite(loss, self.step + 1 if step is None else step, self.last_good)

    def elapsed_fraction(self) -> float:
        budget = self.train["minutes"] * 60
        return (time.perf_counter() - self.t_start) / budget if budget > 0 else 0.0

    def done_fraction(self, total: int) -> float:
        """How far the run is: steps over the total, or wall time over ``train.minutes``, whichever is further."""
        return self.all_max(max(self.step / max(total, 1), self.elapsed_fraction()))

    # -- checkpoints --
    def snapshot(self) -> dict[str, Any]:
        return {**self.task.state(), "kind": self.task.kind, "step": self.step, "rng": common.rng_state(),
                "scaler": self.scaler.state_dict(), "provenance": self.provenance, "recipe": self.task.recipe}

    def save(self, path: Path | None = None) -> Path:
        """Write a checkpoint (main process only); ``last.pt`` unless told otherwise."""
        path = path or self.out / "last.pt"
        if self.main:
            common.save_checkpoint(path, self.snapshot())
            if path.name == "last.pt":
                self.last_good, self.saved_step, self._last_save = path, self.step, time.perf_counter()
        return path

    def save_now(self) -> Path:
        """``last.pt`` of this step, written unless it already was (a stop between steps)."""
        if self.saved_step != self.step:
            self.save()
        return self.out / "last.pt"

    def checkpoint_due(self) -> bool:
        tr = self.train
        if self.saved_step == self.step:
            return False
        return bool(tr["ckpt_every"] and self.step % tr["ckpt_every"] == 0) or bool(
            tr["ckpt_minutes"] and time.perf_counter() - self._last_save > tr["ckpt_minutes"] * 60)

    def _provenance(self) -> dict[str, Any]:
        task = self.task
        prov = common.provenance([task.kind, *self.argv], task.data_description(), **task.provenance_extra())
        if self.init is not None:
            prov["init_from"] = dict(self.init.get("provenance", {}), **task.init_extra(self.init))
        if self.resume is not None:
            old = self.resume.get("provenance", {})
            if old.get("init_from"):
                prov["init_from"] = old["init_from"]
            prov["first_command"] = old.get("first_command") or old.get("command")
        return prov


def fit(task: Task, args: argparse.Namespace, argv: list[str]) -> Path:
    """Run ``task`` to its end (or a pause); returns the last checkpoint's path."""
    run = Run(task, args, argv)
    try:
        path = _fit(task, run)
    except BaseException:
        common.cleanup_distributed(finished=False)
        raise
    common.cleanup_distributed()
    return path


def _fit(task: Task, run: Run) -> Path:
    tr = run.train
    common.seed_everything(tr["seed"] + run.rank)
    task.build(run)
    if run.resume is not None:
        task.load_state(run.resume)
        run.step = int(run.resume["step"])
        if run.resume.get("scaler"):
            run.scaler.load_state_dict(run.resume["scaler"])
        if run.resume.get("rng") and run.world == 1:
            common.set_rng_state(run.resume["rng"])
        run.log(f"resumed from {run.args.resume} at step {run.step}")
    run.provenance = run._provenance()
    if (run.out / "last.pt").is_file():
        run.last_good = run.out / "last.pt"
    if run.main:
        run.out.mkdir(parents=True, exist_ok=True)
    total = task.total_steps()
    prog = run.progress = common.Progress(total, desc=task.kind, every=tr["log_every"], enabled=run.verbose)
    paused = False
    start_step = run.step
    with common.StopBetweenSteps(enabled=run.world == 1) as stop:
        task.begin(run)
        while run.step < total:
            if tr["minutes"] > 0 and run.all_max(run.elapsed_fraction()) >= 1.0:
                run.log(f"train.minutes={tr['minutes']:g} reached at step {run.step}")
                break
            metrics = task.step(run)
            run.scaler.update()
            run.step += 1
            prog.update(run.step, task.images_per_step * run.world, **metrics)
            task.after_step(run)
            if tr["max_steps"] and run.step >= tr["max_steps"] and run.step < total:
                run.save_now()
                run.log(f"paused at step {run.step} (train.max_steps); continue with --resume {run.out / 'last.pt'}")
                paused = True
                break
            if run.checkpoint_due():
                run.save()
            stop.check(run.step, run.save_now)
    prog.close()
    if paused:
        return run.out / "last.pt"
    task.finish(run)
    if run.step != start_step or not (run.out / "last.pt").is_file():
        run.save_now()
    if run.main and not run.args.no_export:
        ckpt = common.load_checkpoint(run.out / task.export_from, task.kind)
        onnx = run.out / task.onnx_name
        report = task.export_checkpoint(ckpt, onnx)
        print("\n".join(report.lines()) + f"\nwrote {onnx}", file=sys.stderr)
    return run.out / "last.pt"


def main_for(task_cls: type[Task], argv: list[str] | None, example: str) -> int:
    """``artcam train KIND ...``: parse, build the task from its recipe, fit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, recipe = parse_task_args(task_cls, argv, example)
    fit(task_cls(recipe), args, argv)
    return 0
