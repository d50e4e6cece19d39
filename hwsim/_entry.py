"""The ``hwsim`` console script (``pyproject.toml`` ``[project.scripts]``) and ``python -m hwsim``.

A function of its own around :func:`hwsim.cli.main`, so that Ctrl-C at any moment gives one line and exit code
130, never a traceback: while the command line and the machinery of a subcommand are still being imported
(:func:`hwsim.cli.main` handles an interrupt only once its subcommand runs), while an error is printed, or
while the process exits (a second Ctrl-C then ends it at once, with the same code). This module imports
nothing at its top but :mod:`sys`; the interpreter's own start-up (``site``) happens before any of it and
lasts about 0.05 s.
"""

import sys

__all__ = ["main"]

#: Exit code of an interrupted command (128 + SIGINT's 2), as a shell reports a process that Ctrl-C ended.
INTERRUPTED = 130


def main() -> None:
    """Run ``hwsim`` with ``sys.argv`` and exit with its code (``../shared/DESIGN.md``: 0, 1, 2, 3; 130 after
    Ctrl-C, 143 after SIGTERM during a sweep)."""
    try:
        from .cli import main as cli_main

        code = cli_main()
    except KeyboardInterrupt as e:  # before (or after) the subcommand's own handler: during imports, parsing
        _exit_on_next_interrupt()
        print(f"hwsim: interrupted{'; ' + str(e) if str(e) else ''}", file=sys.stderr)
        code = INTERRUPTED
    if code == INTERRUPTED:
        _exit_on_next_interrupt()  # the interpreter's exit (joining threads, finalizers) stays quiet too
    sys.exit(code)


def _exit_on_next_interrupt() -> None:
    """From now on, SIGINT ends the process at once with :data:`INTERRUPTED` (no second message, no traceback
    from a handler or finalizer that it would interrupt)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _exit_interrupted)


def _exit_interrupted(signum, frame) -> None:  # noqa: ANN001 - a signal handler's signature
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(INTERRUPTED)
