"""The command line's grammar: commands, options and their help (argparse), Ploomber's
``--env--KEY VALUE`` spelling, and ``--env KEY=VALUE`` pairs.

Only argparse is imported here: ``nbpipe --help`` builds this parser and nothing else.
"""

from __future__ import annotations

import argparse

from nbpipe.cli.errors import UsageError

DESCRIPTION = """\
Build pipelines of Jupyter notebooks and Python functions described in a pipeline.yaml.

The pipeline is found in the working directory or its nearest parent folder that has a
pipeline.yaml; -e/--entry-point or $NBPIPE_ENTRY_POINT picks another."""

EPILOG = """\
examples:
  nbpipe build                      build what is out of date
  nbpipe build --force              rebuild everything
  nbpipe build --partially clean    build 'clean' and what it needs
  nbpipe build -p a -p b            build 'a', 'b' and what they need
  nbpipe build -p 'fit-*' --skip-upstream   build the tasks named fit-..., not what they need
  nbpipe build --env n_rows=1000    override a value of env.yaml
  nbpipe build --json               one JSON object per event on stdout (for programs)
  nbpipe status                     what is up to date, and why not
  nbpipe plot                       the pipeline as a Mermaid diagram in pipeline.html
  nbpipe build --log info --log-file build.log   log at INFO to stderr and to a file

exit codes: 0 built (early stop included), 1 a task failed, 2 bad usage or spec,
130/143 interrupted (SIGINT/SIGTERM)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``nbpipe`` parser; ``args.command`` names the command (None when none was given)."""
    from nbpipe._version import __version__

    parser = argparse.ArgumentParser(
        prog="nbpipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbpipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "-e",
            "--entry-point",
            metavar="ENTRY",
            help="the pipeline: a pipeline.yaml, a folder holding one, or a dotted path to a "
            "function returning a DAG (default: pipeline.yaml here or in a parent folder; "
            "$NBPIPE_ENTRY_POINT overrides)",
        )
        sub.add_argument(
            "--env",
            metavar="KEY=VALUE",
            action="append",
            default=[],
            help="override a value of env.yaml (repeatable; KEY may be dotted for nested "
            "values; VALUE is read as YAML, so 3 is a number). Ploomber's --env--KEY VALUE "
            "works too",
        )
        sub.add_argument(
            "--log",
            "-l",
            metavar="LEVEL",
            type=_log_level,
            help="log at LEVEL (debug, info, warning, error) to stderr: nbpipe's messages and "
            "those of the pipeline's code",
        )
        sub.add_argument(
            "--log-file",
            "-F",
            metavar="FILE",
            help="also write the log to FILE (at --log's level, default info)",
        )
        return sub

    build = command(
        "build",
        "build the pipeline's outdated tasks",
        "Build the tasks whose source, params or upstream products changed since their last "
        "build\n(all of them with --force). Prints the build report.",
    )
    build.add_argument("--force", "-f", action="store_true", help="build every task")
    build.add_argument(
        "--partially",
        "-p",
        metavar="TASK",
        action="append",
        help="build only TASK and the tasks it needs (repeatable: several tasks and what "
        "they need; a pattern such as 'fit-*' names every task that matches)",
    )
    build.add_argument(
        "--skip-upstream",
        "-su",
        action="store_true",
        help="with --partially: build only the tasks named, not the tasks they need (their "
        "products must exist)",
    )
    build.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="run up to N tasks at once in worker processes (the Parallel executor; with "
        "--executor dask, the local Dask cluster's workers)",
    )
    build.add_argument(
        "--executor",
        choices=("serial", "parallel", "dask"),
        help="run the tasks with this executor instead of the spec's (dask: on a Dask cluster, "
        "see --address)",
    )
    build.add_argument(
        "--address",
        metavar="ADDRESS",
        help="with --executor dask: the Dask scheduler to build on (tcp://host:8786; default "
        "$DASK_SCHEDULER_ADDRESS, else a local cluster started for the build)",
    )
    build.add_argument(
        "--json",
        action="store_true",
        help="write one JSON object per line on stdout for each build event, then a summary "
        "(format: docs/json-events.md); logs go to stderr",
    )

    status = command(
        "status",
        "show which tasks are up to date, and why not",
        "Show, for each task, whether it is up to date and why not, without building anything.",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help="print the status as one JSON object on stdout, with each task's kind, source, "
        "upstream tasks and products (format: docs/json-events.md); errors too",
    )

    plot = command(
        "plot",
        "draw the pipeline as a Mermaid diagram",
        "Draw the pipeline as a Mermaid flowchart in pipeline.html (pipeline.NAME.html for\n"
        "pipeline.NAME.yaml), a page that renders with no network. -o picks another file;\n"
        "-o - prints the Mermaid source.",
    )
    plot.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write it to FILE: .html (a page), .md (a fenced mermaid block) or .mmd (Mermaid); "
        "- prints the Mermaid source",
    )
    plot.add_argument(
        "--backend",
        "-b",
        choices=("mermaid", "d3", "pygraphviz"),
        help="Ploomber's option: mermaid (and d3, drawn with Mermaid too) are accepted; "
        "pygraphviz (a PNG) is not supported",
    )
    plot.add_argument(
        "--include-products",
        "-i",
        action="store_true",
        help="list each task's products in its box",
    )

    task = command(
        "task",
        "build one task (its upstream tasks must be built already)",
        "Build the task NAME alone, if it is outdated (always with --force). Its upstream\n"
        "tasks are not built: use 'nbpipe build --partially NAME' for that.",
    )
    task.add_argument("name", metavar="NAME", help="the task's name")
    task.add_argument("--force", "-f", action="store_true", help="build it even if up to date")
    task.add_argument("--json", action="store_true", help="JSON lines output, as for build")

    from nbpipe.cli.run import add_run_command  # papermill's command line (nbpipe/cli/run.py)

    add_run_command(commands)
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a log level; use one of {', '.join(name.lower() for name in LOG_LEVELS)}"
        )
    return level


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def ploomber_env_arguments(argv: list[str]) -> list[str]:
    """Ploomber's ``--env--KEY VALUE`` / ``--env--KEY=VALUE`` as ``--env KEY=VALUE``
    (``__`` in KEY stands for a dot, as in Ploomber's nested keys). Rewritten before argparse
    sees ``argv``, since argparse cannot declare options whose names are open-ended."""
    result: list[str] = []
    items = iter(argv)
    for item in items:
        if item.startswith("--env--"):
            key, equals, value = item[len("--env--") :].partition("=")
            if not equals:
                value = next(items, "")
            result += ["--env", f"{key.replace('__', '.')}={value}"]
        else:
            result.append(item)
    return result


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``--env`` values as a dict. Values stay text: the spec's env reads them as YAML."""
    env = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env
