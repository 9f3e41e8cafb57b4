"""What a pipeline step is, and how a device step is declared once.

A ``Step`` is one keyed unit of work. A device step (build, parity, bench, calibrate) also carries a ``CallSpec``:
the library function, its arguments, and for each keyword the ``rfdeploy`` option that says the same. The
library call and the command printed for a device are both generated from it, so they cannot drift. A keyword with
no option is declared ``local`` with the reason (a progress callback, the provenance string).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...enums import Precision


@dataclass(frozen=True)
class Flag:
    """How the CLI says one argument. ``kind``: ``value`` (``--name VALUE``), ``switch`` (``--name`` when true),
    ``toggle`` (``--name`` / ``--no-name``), ``precision`` (``--fp16`` / ``--int8``; FP32 says nothing) or
    ``positional`` (the value alone). None says nothing (the library's default)."""

    name: str = ""
    kind: str = "value"

    def render(self, value: Any, text: Callable[[Any], str]) -> list[str]:
        if value is None:
            return []
        if self.kind == "value":
            return [self.name, text(value)]
        if self.kind == "positional":
            return [text(value)]
        if self.kind == "switch":
            return [self.name] if value else []
        if self.kind == "toggle":
            return [self.name if value else "--no-" + self.name.removeprefix("--")]
        if self.kind == "precision":
            return [] if Precision.parse(value) == Precision.FP32 else [f"--{Precision.parse(value)}"]
        raise ValueError(f"unknown flag kind {self.kind!r}")


POSITIONAL = Flag(kind="positional")

# The ``rfdeploy`` options the pipeline's device steps use, per command (the CLI's own spellings).
BENCH_FLAGS: dict[str, Flag] = {
    "device": Flag("--device"),
    "input_size": Flag("--input-size"),
    "torch_precision": Flag("--precision"),
    "cuda_graph": Flag("--cuda-graph", "switch"),
    "channels_last": Flag("--channels-last", "switch"),
    "cudnn_benchmark": Flag("--cudnn-benchmark", "toggle"),
    "warmup": Flag("--warmup"),
    "iterations": Flag("--iterations"),
}
PARITY_FLAGS: dict[str, Flag] = {
    "num_images": Flag("--num-images"),
    "device": Flag("--device"),
    "torch_precision": Flag("--precision"),
    "max_miou_drop": Flag("--max-miou-drop"),
    "min_agreement": Flag("--min-agreement"),
}
BUILD_TRT_FLAGS: dict[str, Flag] = {
    "precision": Flag(kind="precision"),
    "library": Flag("--library"),
    "dla_core": Flag("--dla-core"),
    "gpu_fallback": Flag("--gpu-fallback", "toggle"),
    "input_size": Flag("--input-size"),
}
CALIBRATION_FLAGS: dict[str, Flag] = {  # rfdeploy calibrate and rfdeploy build openvino --int8 alike
    "precision": Flag(kind="precision"),
    "data": Flag("--data"),
    "num_images": Flag("--num-images"),
    "producer": Flag("--producer"),
    "method": Flag("--method"),
    "min_agreement": Flag("--min-agreement"),
    "max_miou_drop": Flag("--max-miou-drop"),
    "val_data": Flag("--val-data"),
    "val_images": Flag("--val-images"),
}


def render_flags(flags: Mapping[str, Flag], kwargs: Mapping[str, Any], text: Callable[[Any], str] = str) -> list[str]:
    """The options that say what ``kwargs`` says, in the order of ``kwargs``; a keyword with no option raises."""
    unknown = set(kwargs) - set(flags)
    if unknown:
        raise ValueError(f"no rfdeploy option for {sorted(unknown)}")
    return [word for key, value in kwargs.items() for word in flags[key].render(value, text)]


@dataclass(frozen=True)
class CallSpec:
    """A device step declared once: ``function(*args, **kwargs, **local)`` here, ``rfdeploy <cli> ...`` there.

    ``arg_flags`` says how the CLI gives each positional argument; ``kwargs`` all have an option in ``flags``;
    ``local`` holds what only the library call takes, with ``local_reasons`` saying why; ``cli_only`` is what only
    the command says (the result file it writes, which the pipeline writes itself here)."""

    function: Callable[..., Any]
    cli: tuple[str, ...]
    args: tuple[Any, ...]
    arg_flags: tuple[Flag, ...]
    kwargs: Mapping[str, Any]
    flags: Mapping[str, Flag]
    local: Mapping[str, Any] = field(default_factory=dict)
    local_reasons: Mapping[str, str] = field(default_factory=dict)
    cli_only: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if len(self.args) != len(self.arg_flags):
            raise ValueError(f"{self.cli}: {len(self.args)} arguments, {len(self.arg_flags)} flags")
        unexplained = set(self.local) - set(self.local_reasons)
        if unexplained:
            raise ValueError(f"{self.cli}: local-only keywords without a reason: {sorted(unexplained)}")
        render_flags(self.flags, self.kwargs)  # every keyword has its option (ValueError otherwise)

    def call(self) -> Any:
        return self.function(*self.args, **self.kwargs, **self.local)

    def argv(self, rel: Callable[[Path], str] = str) -> list[str]:
        """The command that does what ``call`` does; paths as ``rel`` names them (relative to the bundle)."""

        def text(value: Any) -> str:
            if isinstance(value, Path):
                return rel(value)
            if isinstance(value, float):
                return f"{value:g}"
            if isinstance(value, tuple) and len(value) == 2:
                return f"{value[0]}x{value[1]}"  # an input size HxW
            return str(value)

        # as a person writes it: the positional arguments, the precision, the other arguments, the options
        args = list(zip(self.args, self.arg_flags, strict=True))
        lead = {k: v for k, v in self.kwargs.items() if self.flags[k].kind == "precision"}
        argv = ["rfdeploy", *self.cli]
        argv += [word for value, flag in args if flag.kind == "positional" for word in flag.render(value, text)]
        argv += render_flags(self.flags, lead, text)
        argv += [word for value, flag in args if flag.kind != "positional" for word in flag.render(value, text)]
        argv += render_flags(self.flags, {k: v for k, v in self.kwargs.items() if k not in lead}, text)
        return argv + [text(v) for v in self.cli_only]

    def command(self, rel: Callable[[Path], str] = str) -> str:
        return " ".join(shlex.quote(a) for a in self.argv(rel))


@dataclass
class Step:
    """One unit of work. ``blocked`` says why this machine cannot do it (None: it can)."""

    id: str
    title: str
    inputs: dict[str, Path]
    settings: dict[str, Any]
    outputs: list[Path]
    action: Callable[[], dict[str, Any] | None]
    target: str | None = None
    blocked: str | None = None
    commands: list[str] = field(default_factory=list)
    baseline: bool = False  # a same-device PyTorch baseline: pending or failed, it blocks no target
    optional: bool = False  # a step nothing depends on (the CPU prediction): when it cannot run, it is skipped
    spec: CallSpec | None = None  # a device step: the one declaration its action and its commands come from
