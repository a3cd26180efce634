"""What every ``dynafit`` command shares: the backend options (``--backend``,
``--address``, ``--workers``), the exit codes, and a parser whose usage errors are
exceptions (reported in one line with exit code 2, never a traceback)."""

from __future__ import annotations

import argparse

#: exit codes of every command: done; some blocks failed (rerun to retry); bad arguments
#: or input; interrupted
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments: reported with the command's name and exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> None:  # argparse would print and sys.exit(2)
        raise UsageError(message)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--address`` and ``--workers``: where the work of a command runs."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where the work runs: local processes or a Ray cluster (default: local)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster: 'auto' or HOST:PORT (default: RAY_ADDRESS, else a local "
        "cluster on 127.0.0.1 started and stopped by this command)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes, or CPUs of a local Ray cluster (default: the backend's)",
    )


def backend_options(args: argparse.Namespace) -> dict:
    """The backend options of parsed ``args`` as keyword arguments (backend, address,
    workers)."""
    return {"backend": args.backend, "address": args.address, "workers": args.workers}


def check_backend_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse combinations of the backend options that cannot mean anything."""
    if args.address is not None and args.backend != "ray":
        parser.error("--address needs --backend ray")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
