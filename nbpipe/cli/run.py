"""``nbpipe run INPUT OUTPUT``: papermill's command line, run by nbpipe's engine.

The options and their meanings are papermill's (``papermill --help``): parameters from ``-p NAME
VALUE`` (typed as papermill types them: ``True``/``False``/``None``, whole numbers, decimals, else
text), ``-r NAME VALUE`` (raw text), ``-y YAML``, ``-f FILE``, ``-b BASE64``; they are merged in
papermill's order whatever the order on the command line (injected paths, then ``-b``, ``-f``,
``-y``, ``-p``, ``-r``; a name given twice keeps its last value). ``{name}`` placeholders in INPUT
and OUTPUT are filled from the parameters, as papermill does (``{pm[run_uuid]}`` too). The
executed notebook is the one papermill writes: the same injected cell, tags and metadata.

What nbpipe adds: ``--grid NAME VALUE [VALUE ...]`` (repeatable) and ``--grid-file YAML`` run one
notebook per combination of values, in parallel (``--processes N``); several OUTPUTs (an ``.html``
gets the converted report); progress, the report table, ``--json`` build events and exit codes as
for ``nbpipe build``. Each run is a task of a small DAG built and run by the engine; no build
records are written (every ``nbpipe run`` runs).

Differences, on purpose: a failing notebook leaves OUTPUT as it was and is kept beside it as
``<name>.failed.ipynb`` (papermill writes it to OUTPUT); an OUTPUT is written once, when its
notebook ends (``--request-save-on-cell-execute``, ``--autosave-cell-every`` and
``--progress-bar`` are accepted and change nothing); ``-`` (stdin/stdout) and remote paths
(``s3://``...) are not supported.

Only argparse is imported with this module (``nbpipe --help`` builds its parser); the rest
comes with the command (``nbpipe.cli.run_tasks`` holds the task and the job).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from nbpipe.cli.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from nbpipe.cli.output import Output

DESCRIPTION = """\
Run the notebook INPUT (.ipynb, or a jupytext script such as a percent .py) with papermill's
options and write the executed notebook to OUTPUT (.ipynb; .html and the other formats of
nb_product_key give the converted report; several OUTPUTs get one each). {name} placeholders in
OUTPUT (and INPUT) are filled from the parameters. With --grid or --grid-file, one notebook runs
per combination of values, in parallel."""

EPILOG = """\
examples:
  nbpipe run in.ipynb out.ipynb -p alpha 0.1 -p label 'first run'
  nbpipe run in.ipynb out.ipynb out.html -y 'n: 3' -k python3 --cwd data
  nbpipe run report.py 'out/report-{region}-{year}.ipynb' \\
      --grid region north south --grid year 2023 2024 --processes 4
  nbpipe run report.py 'out/report-{region}.html' --grid-file regions.yaml --json

parameters are merged in papermill's order, whatever their order here: --inject-*-path, then
-b, -f, -y, -p, -r (a name given twice keeps its last value); a grid value comes last.
exit codes: 0 ran, 1 a notebook failed (kept as <OUTPUT>.failed.ipynb), 2 bad usage,
130/143 interrupted."""

LOG_LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def add_run_command(commands: argparse._SubParsersAction) -> None:
    """The ``run`` subcommand, on the ``nbpipe`` parser's subcommands."""
    run = commands.add_parser(
        "run",
        help="run one notebook (or a grid of them) with papermill's command line",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # as papermill's command line: whole option names only
    )
    run.__class__ = _IntermixedParser
    run.add_argument("input", metavar="INPUT", help="the notebook to run")
    run.add_argument(
        "outputs",
        metavar="OUTPUT",
        nargs="*",
        help="where the executed notebook goes (.ipynb, .html, ...; several allowed)",
    )
    params = run.add_argument_group("parameters (papermill's)")
    params.add_argument(
        "-p",
        "--parameters",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter, typed as papermill types it (True, 3, 0.5, else text)",
    )
    params.add_argument(
        "-r",
        "--parameters_raw",
        "--parameters-raw",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter read as raw text",
    )
    params.add_argument(
        "-f",
        "--parameters_file",
        "--parameters-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML file of parameters",
    )
    params.add_argument(
        "-y",
        "--parameters_yaml",
        "--parameters-yaml",
        action="append",
        default=[],
        metavar="YAML",
        help="parameters as a YAML string",
    )
    params.add_argument(
        "-b",
        "--parameters_base64",
        "--parameters-base64",
        action="append",
        default=[],
        metavar="BASE64",
        help="parameters as a base64-encoded YAML string",
    )
    params.add_argument(
        "--inject-input-path",
        action="store_true",
        help="add INPUT as the parameter PAPERMILL_INPUT_PATH",
    )
    params.add_argument(
        "--inject-output-path",
        action="store_true",
        help="add OUTPUT as the parameter PAPERMILL_OUTPUT_PATH",
    )
    params.add_argument("--inject-paths", action="store_true", help="both of the above")
    execution = run.add_argument_group("execution (papermill's)")
    execution.add_argument("-k", "--kernel", help="the kernel (default: the notebook's)")
    execution.add_argument(
        "-l", "--language", help="the language, for the injected cell (default: the kernel's)"
    )
    execution.add_argument(
        "--cwd", help="the kernel's working directory (default: the current one)"
    )
    execution.add_argument("--engine", help="papermill's execution engine")
    execution.add_argument(
        "--prepare-only",
        dest="prepare_only",
        action="store_true",
        default=False,
        help="write the notebook with its parameters injected, without running it",
    )
    execution.add_argument(
        "--prepare-execute",
        dest="prepare_only",
        action="store_false",
        help="run it (the default)",
    )
    execution.add_argument(
        "--start-timeout",
        "--start_timeout",
        type=int,
        default=60,
        metavar="SECONDS",
        help="time allowed for the kernel to start (default: 60)",
    )
    execution.add_argument(
        "--execution-timeout",
        type=int,
        metavar="SECONDS",
        help="time allowed for each cell (default: no limit)",
    )
    execution.add_argument(
        "--report-mode",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="hide the code cells' input in the executed notebook",
    )
    execution.add_argument(
        "--not-report-mode", dest="report_mode", action="store_false", help=argparse.SUPPRESS
    )
    execution.add_argument(
        "--log-output",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show what the notebook prints on stderr",
    )
    execution.add_argument(
        "--log-level", choices=LOG_LEVELS, help="the level of papermill's own messages"
    )
    execution.add_argument(
        "--stdout-file", metavar="FILE", help="write what the notebook prints to FILE"
    )
    execution.add_argument(
        "--stderr-file", metavar="FILE", help="write what the notebook prints on stderr to FILE"
    )
    execution.add_argument(
        "--request-save-on-cell-execute",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accepted; nbpipe writes OUTPUT once, when the notebook ends",
    )
    execution.add_argument(
        "--autosave-cell-every",
        type=int,
        metavar="SECONDS",
        help="accepted; nbpipe writes OUTPUT once, when the notebook ends",
    )
    execution.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        help="accepted; nbpipe shows its own progress",
    )
    execution.add_argument(
        "--help-notebook",
        action="store_true",
        help="show the parameters of INPUT (its parameters cell) and exit",
    )
    batch = run.add_argument_group("batches and output (nbpipe's)")
    batch.add_argument(
        "--grid",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="run once per VALUE of parameter NAME (typed as -p types them); repeatable: one "
        "run per combination",
    )
    batch.add_argument(
        "--grid-file",
        metavar="YAML",
        help="a YAML file mapping parameter names to lists of values (or a list of such "
        "mappings), as a pipeline's grid:",
    )
    batch.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="run up to N notebooks at once (default: as many as the machine has cores)",
    )
    batch.add_argument(
        "--json",
        action="store_true",
        help="write one JSON object per line on stdout for each build event (as nbpipe build)",
    )


class _IntermixedParser(argparse.ArgumentParser):
    """Options may come between INPUT and OUTPUT (``nbpipe run in.ipynb -p a 1 out.ipynb``), as
    on papermill's command line: argparse's intermixed parsing, for this subcommand."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._parsing:  # (the intermixed parse calls this method in turn)
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# -- the command ----------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, output: Output) -> int:
    extra = getattr(args, "extra", None)  # what the parser did not know (parse_known_args)
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
    if args.help_notebook:
        return _help_notebook(args)
    if not args.outputs:
        raise UsageError("nbpipe run needs INPUT and OUTPUT (the executed notebook's path)")
    for path in (args.input, *args.outputs):
        if path == "-" or "://" in path:
            raise UsageError(
                f"{path!r}: nbpipe run reads and writes local files only (no stdin/stdout, "
                "no remote paths)"
            )
    base = parameters(args)
    grid = grid_combinations(args)
    runs = plan_runs(args, base, grid)
    from nbpipe.cli.commands import _build
    from nbpipe.cli.run_tasks import make_dag

    output.header(os.path.abspath(runs[0].input))
    dag = make_dag(runs, args, batch=bool(grid))
    return _build(dag, output, lambda observers: dag.build(force=True, observers=observers))


class Run:
    """One notebook to run: its input and outputs (placeholders filled) and parameters."""

    def __init__(
        self,
        name: str,
        input: str,
        outputs: list[str],
        parameters: dict[str, Any],
        stdout_file: str | None = None,
        stderr_file: str | None = None,
    ):
        self.name = name
        self.input = input
        self.outputs = outputs
        self.parameters = parameters
        self.stdout_file = stdout_file
        self.stderr_file = stderr_file


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters, merged in papermill's order: injected paths, ``-b``, ``-f``, ``-y``,
    ``-p``, ``-r``. A later source replaces an earlier one's value."""
    import base64
    import binascii

    result: dict[str, Any] = {}
    if args.inject_input_path or args.inject_paths:
        result["PAPERMILL_INPUT_PATH"] = args.input
    if args.inject_output_path or args.inject_paths:
        result["PAPERMILL_OUTPUT_PATH"] = args.outputs[0]
    for text in args.parameters_base64:
        try:
            decoded = base64.b64decode(text)
        except (binascii.Error, ValueError) as error:
            raise UsageError(f"-b {text!r}: not base64 ({error})") from None
        result.update(_mapping(decoded, f"-b {text!r}"))
    for path in args.parameters_file:
        try:
            with open(path, encoding="utf-8") as file:
                content = file.read()
        except OSError as error:
            raise UsageError(f"-f {path}: {error.strerror or error}") from None
        result.update(_mapping(content, f"-f {path}"))
    for text in args.parameters_yaml:
        result.update(_mapping(text, f"-y {text!r}"))
    for name, value in args.parameters:
        result[name] = resolve_type(value)
    for name, value in args.parameters_raw:
        result[name] = value
    return result


def resolve_type(text: str) -> Any:
    """A ``-p`` value as papermill types it: ``True``, ``False``, ``None``, a whole number, a
    decimal (``1e3``, ``nan`` too), else the text itself."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _yaml(text: str | bytes, where: str) -> Any:
    """YAML as papermill reads parameters: safe, with dates left as text."""
    import yaml

    class NoDates(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            first: [
                resolver for resolver in resolvers if resolver[0] != "tag:yaml.org,2002:timestamp"
            ]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

    try:
        return yaml.load(text, Loader=NoDates)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise UsageError(f"{where}: not valid YAML: {detail}") from None


def _mapping(text: str | bytes, where: str) -> dict[str, Any]:
    value = _yaml(text, where)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(
            f"{where}: parameters must be a YAML mapping of names to values, not "
            f"{type(value).__name__} {value!r}"
        )
    return value


def grid_combinations(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every combination of ``--grid``/``--grid-file`` values (none without a grid), as a
    pipeline's ``grid:`` expands them: the last parameter varies fastest; the ``--grid``
    options multiply each mapping of the file."""
    cli: dict[str, list[Any]] = {}
    for name, *values in args.grid:
        if not values:
            raise UsageError(f"--grid {name}: give at least one value (--grid NAME VALUE ...)")
        if name in cli:
            raise UsageError(f"--grid {name} is given twice; give all its values at once")
        cli[name] = [resolve_type(value) for value in values]
    if args.grid_file:
        try:
            with open(args.grid_file, encoding="utf-8") as file:
                grid = _yaml(file.read(), f"--grid-file {args.grid_file}")
        except OSError as error:
            raise UsageError(f"--grid-file {args.grid_file}: {error.strerror or error}") from None
        if cli and isinstance(grid, dict):
            grid = {**grid, **cli}
        elif cli and isinstance(grid, list):
            grid = [{**block, **cli} if isinstance(block, dict) else block for block in grid]
        where = args.grid_file
    elif cli:
        grid, where = cli, None
    else:
        return []
    from nbpipe.spec.grid import combinations

    return combinations(grid, where, None)


def plan_runs(
    args: argparse.Namespace, base: dict[str, Any], grid: list[dict[str, Any]]
) -> list[Run]:
    """One run per grid combination (or one run), with INPUT and OUTPUT filled in."""
    from pathlib import Path

    runs = []
    combos = grid or [{}]
    for index, combination in enumerate(combos):
        params = {**base, **combination}
        input = _fill(args.input, params, "INPUT")
        outputs = [_fill(path, params, "OUTPUT") for path in args.outputs]
        name = Path(input).stem
        if grid:
            name = _run_name(name, combination, index)
        files = [
            _fill(path, params, option) if path else None
            for option, path in (
                ("--stdout-file", args.stdout_file),
                ("--stderr-file", args.stderr_file),
            )
        ]
        runs.append(Run(name, input, outputs, params, *files))
    if grid:
        _check_distinct(runs, args)
    if len({run.name for run in runs}) < len(runs):
        for index, run in enumerate(runs):
            run.name = f"{Path(run.input).stem}-{index}"
    return runs


def _fill(path: str, params: dict[str, Any], what: str) -> str:
    """``path`` with its ``{name}`` placeholders filled, as papermill fills them (str.format,
    with ``pm``: run_uuid, current_datetime_local, current_datetime_utc)."""
    if "{" not in path and "}" not in path:
        return path
    import datetime
    import uuid

    builtins = {
        "pm": {
            "run_uuid": str(uuid.uuid4()),
            "current_datetime_local": datetime.datetime.now(),
            "current_datetime_utc": datetime.datetime.now(datetime.timezone.utc),
        }
    }
    try:
        return path.format(**{**builtins, **params})
    except KeyError as error:
        names = ", ".join(params) or "none"
        raise UsageError(
            f"{what} {path!r} has the placeholder {{{error.args[0]}}}, which is not a "
            f"parameter (parameters: {names})"
        ) from None
    except (IndexError, ValueError, AttributeError, TypeError) as error:
        raise UsageError(f"{what} {path!r}: placeholders cannot be filled: {error}") from None


def _run_name(stem: str, combination: dict[str, Any], index: int) -> str:
    values = ",".join(f"{name}={value}" for name, value in combination.items())
    return f"{stem}[{values}]" if len(values) <= 60 else f"{stem}-{index}"


def _check_distinct(runs: list[Run], args: argparse.Namespace) -> None:
    seen: dict[str, Run] = {}
    for run in runs:
        for path in run.outputs:
            other = seen.setdefault(os.path.abspath(path), run)
            if other is not run:
                raise UsageError(
                    f"the grid runs {len(runs)} notebooks, and two of them would write {path}: "
                    f"put the grid's parameters in OUTPUT as placeholders, e.g. "
                    f"{_example(args)}"
                )


def _example(args: argparse.Namespace) -> str:
    names = [name for name, *_ in args.grid] or ["name"]
    root, ext = os.path.splitext(args.outputs[0])
    return root + "".join(f"-{{{name}}}" for name in names) + ext


def _help_notebook(args: argparse.Namespace) -> int:
    """papermill's ``--help-notebook``: the parameters the notebook's parameters cell
    declares, their inferred types, defaults and help comments."""
    from pathlib import Path

    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"input notebook {args.input} does not exist")
    import nbformat
    from papermill.inspection import _infer_parameters

    if path.suffix.lower() == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
    else:
        import jupytext

        notebook = jupytext.read(path)
    print(f"Parameters inferred for notebook '{args.input}':")
    if not any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells):
        print("\n  No cell tagged 'parameters'")
        return EXIT_OK
    inferred = _infer_parameters(notebook, name=args.kernel, language=args.language)
    if not inferred:
        print("\n  Can't infer anything about this notebook's parameters.")
    for parameter in inferred:
        kind = parameter.inferred_type_name
        definition = (
            f"  {parameter.name}: {'Unknown type' if kind == 'None' else kind} "
            f"(default {parameter.default})"
        )
        if len(definition) > 30:
            line = f"{definition}\n{34 * ' '}{parameter.help}" if parameter.help else definition
        else:
            line = f"{definition:<34}{parameter.help}"
        print(line)
    return EXIT_OK
