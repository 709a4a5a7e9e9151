"""The ``nbpipe`` command line: build, inspect and plot a pipeline from a terminal, CI or a batch job.

``main(argv) -> int`` parses the command, runs it and is the one place where exceptions become
messages and exit codes:

    0    built (an early stop counts), or the command did what it was asked
    1    a task failed (the others were built; the report says which)
    2    bad usage, or a problem in the spec or the pipeline (``file:line: message``)
    130  interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM. Running kernels and workers are
         stopped and no half-written product is left.

Output: the build report (a table) goes to stdout; progress goes to stderr (a bar on a terminal,
log lines otherwise). With ``--json``, stdout carries only JSON lines, one per build event (see
``docs/json-events.md``); everything else, including anything tasks print, goes to stderr.
``status --json`` writes one JSON object: the tasks (kind, source, upstream, products, state) and
edges, or the error that kept the pipeline from loading (exit code 2).

Start-up is kept fast (``nbpipe --help``): only argparse is imported up front; the spec loader,
the engine and Jupyter's libraries are imported by the command that needs them.

The modules, in the order a command meets them: ``parser`` (arguments), ``commands`` (the
handlers, and loading the pipeline), ``output`` and ``json_output`` (reporting, for people and
for programs), ``errors`` (exit codes, exceptions as messages).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from nbpipe.cli.errors import EXIT_USAGE, say
from nbpipe.cli.parser import build_parser, ploomber_env_arguments

__all__ = ["console", "main"]


def console() -> int:
    """The ``nbpipe`` command (and ``python -m nbpipe``): ``main``, in a process that ends with
    it. The interpreter's exit tears down every module it imported, and the collections it makes
    meanwhile scan all their objects: 0.2 s after a notebook build (papermill, nbconvert and what
    they import), for memory the exit frees anyway. Frozen (``gc.freeze``), they are not scanned;
    the exit still runs atexit handlers and finalisers, and flushes the streams."""
    import gc

    code = main()
    gc.freeze()
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    argv = ploomber_env_arguments(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        # A factory entry point (-e module.make) takes its own arguments: they are what
        # argparse does not know, checked once the factory is loaded (commands.load_dag).
        args, args.extra = parser.parse_known_args(argv)
        if args.extra and args.command is None:
            parser.error(f"unrecognized arguments: {' '.join(args.extra)}")
    except SystemExit as exit:  # --help, --version (0) and usage errors (2)
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Only now, so that --help and usage errors load no more than the parser.
    from nbpipe.cli.commands import COMMANDS
    from nbpipe.cli.json_output import JsonOutput, StatusJsonOutput
    from nbpipe.cli.output import HumanOutput, Output, log_to, setup_logging

    try:
        log_to(getattr(args, "log", None), getattr(args, "log_file", None))
    except OSError as error:
        print(f"error: --log-file: {error}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(level="WARNING")
    output: Output
    if not getattr(args, "json", False):
        output = HumanOutput()
    elif args.command == "status":
        output = StatusJsonOutput()
    else:
        output = JsonOutput(args.command)
    interrupts = Interrupts()
    try:
        with interrupts:
            return COMMANDS[args.command](args, output)
    except KeyboardInterrupt:
        return output.interrupted(interrupts.signal_number or signal.SIGINT)
    except Exception as error:
        return output.error(error)
    finally:
        output.close()


class Interrupts:
    """SIGTERM is handled like Ctrl-C: KeyboardInterrupt, which makes the engine stop running
    kernels and workers and discard their staged products. Signals arriving while that cleanup
    runs are ignored, so a second Ctrl-C cannot leave kernels behind."""

    def __init__(self):
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signal_number is not None:
            say("nbpipe: still stopping running tasks...")
            return
        self.signal_number = signum
        raise KeyboardInterrupt

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False
