"""The ``rfdeploy`` command line: one module per command group, a thin layer over the library.

Importing a command module registers its commands; the order below is the order ``rfdeploy --help`` lists them.
"""

# isort: off
from . import info, data, export, build, parity, bench, report, calibrate, pipeline, sweep  # noqa: F401  (registers the commands)

# isort: on
from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
