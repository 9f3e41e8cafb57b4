"""The ``rfdeploy`` application: the Typer apps, global options, error mapping and progress bars.

Commands live in one module per group (``cli/<group>.py``); each checks its options, calls one library
function and renders the result."""

from __future__ import annotations

import errno
import functools
import logging
import shlex
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table as _RichTable
from typer.core import TyperGroup

from .. import __version__
from ..errors import RefineNetDeployError, printable, read_failed, write_failed

F = TypeVar("F", bound=Callable[..., Any])


class Table(_RichTable):
    """Every table the CLI prints: a cell too wide for its column folds onto the next line instead of being cut
    with an ellipsis (a SHA-256, a path, a header at 80 columns keep every character)."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)

    def add_row(self, *args: Any, **kwargs: Any) -> None:
        super().add_row(*args, **kwargs)
        for column in self.columns:  # columns made by add_row itself
            column.overflow = "fold"


out = Console()
err = Console(stderr=True)
_state = {"debug": False, "quiet": False}


class _Group(TyperGroup):
    """The top-level command group: usage errors (missing argument, bad option value, unknown option, bad choice)
    are one line ``error: ...`` on stderr with exit code 2, as the README promises, instead of Click's framed box.
    Overriding ``main`` covers every way in: the console script, ``python -m`` and test runners."""

    def main(self, args: Any = None, prog_name: str | None = None, *a: Any, standalone_mode: bool = True, **kw: Any):
        args = normalize_argv(list(sys.argv[1:] if args is None else args))
        if not standalone_mode:
            return super().main(args, prog_name, *a, standalone_mode=False, **kw)
        sys.exit(_main(self, list(args) if args is not None else None, prog_name or "rfdeploy", **kw))

    def _plain_main(self, args: Any, prog_name: str, **kw: Any) -> Any:
        return super().main(args, prog_name, standalone_mode=False, **kw)


GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "--debug")


def normalize_argv(argv: list[str]) -> list[str]:
    """The command-line rules every command shares (README "Commands"), applied before parsing:

    - ``-q``/``--quiet``, ``-v``/``--verbose`` and ``--debug`` work anywhere on the line (they are moved before the
      subcommand, where Click takes them);
    - ``--json`` with no value (last, or followed by another option) means ``--json -``: the result as JSON on
      stdout. A value right after it is the file to write.

    Everything after a ``--`` is left as it is."""
    head, tail = argv, []
    if "--" in argv:
        i = argv.index("--")
        head, tail = argv[:i], argv[i:]
    out: list[str] = []
    for i, token in enumerate(head):
        out.append(token)
        if token == "--json":
            nxt = head[i + 1] if i + 1 < len(head) else None
            if nxt is None or (nxt.startswith("-") and nxt != "-"):
                out.append("-")
    moved = [t for t in out if t in GLOBAL_FLAGS]
    return [*moved, *(t for t in out if t not in GLOBAL_FLAGS), *tail]


def emit_json(doc: Any, json_out: str | None) -> bool:
    """``--json``: the result to stdout (``-``; then no table is printed: returns True) or to a file (announced on
    stderr as every written file is; returns False, the table follows)."""
    import json

    if json_out is None:
        return False
    if json_out == "-":
        out.print_json(json.dumps(doc, default=str))
        return True
    from ..artifacts import write_json_atomic

    write_json_atomic(json_out, doc)
    err.print(f"wrote {json_out}", markup=False, highlight=False, soft_wrap=True)
    return False


def run(application: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the CLI (``argv``: default ``sys.argv[1:]``) and return its exit code; usage errors as one line."""
    from typer.main import get_command

    try:
        get_command(application).main(args=argv, prog_name="rfdeploy")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _click_error_type() -> type[Exception]:
    """The base class of the Click exceptions Typer raises, from public names only: Typer 0.2x vendors Click and
    derives them from ``typer.TyperException``; older Typers raise the ``click`` package's own."""
    base = getattr(typer, "TyperException", None)
    if isinstance(base, type) and issubclass(typer.BadParameter, base):
        return base
    from click.exceptions import ClickException

    return ClickException


def _main(command: _Group, argv: list[str] | None, prog_name: str, **kw: Any) -> int:
    try:
        rv = command._plain_main(argv, prog_name, **kw)
    except _click_error_type() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # "rfdeploy" or "rfdeploy build" alone: help shown; exit 2
            return 2  # (told by its name, as Typer's own rich_utils does, so no private module is imported)
        ctx = getattr(exc, "ctx", None)  # a usage error names the command whose --help to read
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        err.print(f"error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        return int(getattr(exc, "exit_code", 1))
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted", markup=False)
        return 1
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


app = typer.Typer(
    cls=_Group,
    name="rfdeploy",
    help="RefineNet / Light-Weight RefineNet checkpoints to ONNX, TensorRT and OpenVINO, "
    "with IoU parity against PyTorch and latency per device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # Click's plain help: wraps at the terminal width, never cuts an option name
)
data_app = typer.Typer(
    help="Datasets: synthetic scenes for demos and tests.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(data_app, name="data")
export_app = typer.Typer(
    help="Export a checkpoint to a deployable format.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(export_app, name="export")
build_app = typer.Typer(
    help="Build a runtime artifact from an ONNX model.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(build_app, name="build")


def _print_error(exc: RefineNetDeployError) -> None:
    from rich.markup import escape

    if _state["debug"]:
        err.print_exception()
    message = printable(exc.message)  # a newline in a file name never splits the one error line
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"hint: {printable(exc.hint)}", markup=False, highlight=False, soft_wrap=True)


def _environment_error(exc: OSError) -> RefineNetDeployError:
    """An ``OSError`` no library boundary wrapped is still the environment, not a bug: a write refused (no space,
    file-size limit, quota, read-only) is exit 2, anything else about a file exit 5, naming the file."""
    from ..errors import WRITE_ERRNOS

    path = exc.filename2 or exc.filename if exc.errno in WRITE_ERRNOS else exc.filename
    if exc.errno in WRITE_ERRNOS and exc.errno not in (errno.EACCES, errno.EPERM):
        return write_failed(path if path is not None else "an output", exc)
    return read_failed(path if path is not None else "input", exc)


def handle_errors(fn: F) -> F:
    """Map library errors to ``error: ...`` on stderr and their exit code; traceback only with --debug.

    An optional module that is not installed is exit 4 naming the extra that provides it. Anything else that escapes
    is a bug in this tool: one line, exit 1, the traceback with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RefineNetDeployError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as exc:
            if _state["debug"]:
                raise
            wrapped = _environment_error(exc)
            _print_error(wrapped)
            raise typer.Exit(wrapped.exit_code) from None
        except Exception as exc:
            from .._optional import missing_dependency

            missing = missing_dependency(exc) if isinstance(exc, ImportError) else None
            if missing is not None:
                _print_error(missing)
                raise typer.Exit(missing.exit_code) from None
            if _state["debug"]:
                raise
            err.print(
                f"error: internal error ({type(exc).__name__}: {printable(exc)}); this is a bug in rfdeploy. "
                "Rerun with --debug for the traceback and report it",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"rfdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Info logs on stderr.")] = False,
) -> None:
    _state["debug"], _state["quiet"] = debug, quiet
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        force=True,
        handlers=[RichHandler(console=err, show_time=False, show_path=debug)],
    )


def progress_bar():  # noqa: ANN202  (rich.progress.Progress, imported lazily)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=False,
        disable=_state["quiet"] or not err.is_terminal,
    )


def status_spinner(text: str):  # noqa: ANN201  (rich Status, or a null context)
    """A one-line spinner on stderr for steps reported as messages; off under --quiet or when not a terminal."""
    from contextlib import nullcontext

    return err.status(text, spinner="dots") if err.is_terminal and not _state["quiet"] else nullcontext()


def steps_line(ran: int, up_to_date: int) -> str:
    """The closing count of a keyed run (pipeline, sweep): "1 step ran, 4 up to date"."""
    return f"{ran} step{'' if ran == 1 else 's'} ran, {up_to_date} up to date"


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["rfdeploy", *sys.argv[1:]])
