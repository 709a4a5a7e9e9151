"""ShellScript: a shell script (``.sh``) rendered as a jinja template and run with bash.

Ploomber's ShellScript. The script names its product and its upstream products with
placeholders, ``cp {{upstream['download']}} {{product}}``; params are placeholders too
(``{{n_rows}}``). The task renders it with the staged product paths and the upstream products'
paths (``{{product['key']}}`` when it has several; an undefined name is an error, never an empty
string) and runs the result with ``bash`` in a worker, like any other job, in a child process
that dies with it. Like Ploomber, only bash's exit status counts (no ``set -e``: add it yourself)
and the script must use ``{{product}}``, since that is how it learns where to write.

Upstream tasks are read from the template (every ``upstream['name']`` or ``upstream.name``), as
a function's are from its code. A failure shows bash's exit status and the end of its stderr.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbpipe.engine.events import TaskFailure
from nbpipe.engine.products import File, Product, map_files
from nbpipe.exceptions import DAGSpecError
from nbpipe.tasks.base import Task
from nbpipe.tasks.child import ProgramFailed, exit_description, run_program
from nbpipe.tasks.script import upstream_paths
from nbpipe.tasks.source_checks import own_source_problems, reserved_params_problems

if TYPE_CHECKING:
    from nbpipe.engine.dag import DAG


@dataclass
class ShellJob:
    """Everything a worker needs to run one shell script: its rendered code."""

    task: str
    source: str  # for messages
    code: str
    cwd: str

    def run(self) -> None:
        descriptor, path = tempfile.mkstemp(prefix="nbpipe-", suffix=".sh")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as f:
                f.write(self.code)
            status, stderr = run_program(["bash", path], self.cwd)
        finally:
            os.unlink(path)
        if status != 0:
            what = exit_description("bash", status)
            last = stderr.strip().splitlines()[-1:] if stderr.strip() else []
            text = f"{self.source}: {what}"
            text += f"; the end of its stderr:\n{stderr.rstrip()}" if last else " (no stderr)"
            raise ProgramFailed(
                TaskFailure(
                    task=self.task,
                    type="ShellScriptError",
                    message=f"{what}: {last[0]}" if last else what,
                    traceback=text,
                    source=self.source,
                )
            )


class ShellScript(Task):
    """Runs a shell script with bash; see the module docstring.

    The arguments are Ploomber's, in its order. ``source``: a ``pathlib.Path`` (or an
    ``os.PathLike``) to the script, or, as in Ploomber, a ``str`` holding the script's code
    itself (then give ``name``). ``client``: only None (scripts run locally with bash).
    ``cwd`` (nbpipe's): the working directory (default: the working directory when the task is
    created; a spec's ShellScript runs in the spec's folder).
    """

    def __init__(
        self,
        source: str | os.PathLike,
        product: Any,
        dag: DAG,
        name: str | None = None,
        client: Any = None,
        params: Mapping[str, Any] | None = None,
        cwd: str | os.PathLike | None = None,
    ):
        if client is not None:
            raise ValueError(
                "ShellScript's client is not supported by nbpipe: scripts run locally with bash "
                "(client=None)"
            )
        if isinstance(source, str):
            self.source: Path | None = None
            self._code: str | None = source
        else:
            self.source = Path(source)
            self._code = None
        self.cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
        super().__init__(product, dag, name, params)

    def _default_name(self) -> str:
        if self.source is None:
            raise DAGSpecError("A ShellScript given its code as a string needs a name=")
        return self.source.stem

    @property
    def source_path(self) -> str | None:
        return None if self.source is None else str(self.source)

    @property
    def code(self) -> str:
        """The script as written (a template), read once per render."""
        if self._code is None:
            self._code = self.source.read_text(encoding="utf-8")
        return self._code

    def refresh(self) -> None:
        if self.source is not None:
            self._code = None

    def source_digest(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()

    def _where(self) -> str:
        return str(self.source) if self.source is not None else f"task {self.name!r}'s script"

    def problems(self) -> list[str]:
        if self.source is not None and not self.source.exists():
            return [f"source script {self.source} does not exist"]
        try:
            template = parse_template(self.code)
        except OSError as error:
            return [f"cannot read script {self.source}: {error}"]
        except TemplateError as error:
            return [f"{self._where()}: {error}"]
        problems = []
        used = template.variables()
        if "product" not in used:
            problems.append(
                f"{self._where()} must use {{{{product}}}}: that is where the script learns "
                "the path to write (e.g. `echo done > {{product}}`)"
            )
        unknown = sorted(used - {"product", "upstream", *self.params})
        if unknown:
            problems.append(
                f"{self._where()} uses {', '.join('{{' + n + '}}' for n in unknown)}, which "
                "is neither a param nor product/upstream"
            )
        if "upstream" in used and not self.upstream:
            problems.append(f"{self._where()} uses {{{{upstream}}}} but the task has no upstream")
        missing = [name for name in template.upstream() if name not in self.upstream]
        if missing and self.upstream:
            problems.append(
                f"{self._where()} uses upstream[{missing[0]!r}], which is not an upstream task "
                f"of {self.name!r}; its upstream tasks: {', '.join(self.upstream)}"
            )
        problems += reserved_params_problems(self.params, how="passes")
        if self.source is not None:
            problems += own_source_problems("script", self.files, os.path.abspath(self.source))
        return problems

    def render_code(self, product: Product) -> str:
        """The script with its placeholders filled in, writing to ``product``."""
        context: dict[str, Any] = {**self.params, "product": map_files(product, File.absolute)}
        if self.upstream:
            context["upstream"] = upstream_paths(self.upstream_products())
        return parse_template(self.code).render(context)

    def make_job(self, staged: Product, more_to_come: bool = False) -> ShellJob:
        return ShellJob(
            self.name, self.source_path or self.name, self.render_code(staged), self.cwd
        )


# -- templates ------------------------------------------------------------------------------------
class TemplateError(ValueError):
    """A script's template does not parse; ``line`` is where (from 1)."""

    def __init__(self, message: str, line: int | None):
        self.line = line
        super().__init__(message)


class Template:
    """A jinja template as Ploomber renders them: an undefined name is an error."""

    def __init__(self, text: str):
        import jinja2

        self.environment = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        try:
            self.ast = self.environment.parse(text)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(
                f"the template does not parse (line {error.lineno}): {error.message}",
                error.lineno,
            ) from None
        self.text = text

    def variables(self) -> set[str]:
        from jinja2 import meta

        return set(meta.find_undeclared_variables(self.ast))

    def upstream(self) -> dict[str, int]:
        """Each name in ``upstream['name']`` or ``upstream.name``, with its first line."""
        from jinja2 import nodes

        found: dict[str, int] = {}
        for node in self.ast.find_all((nodes.Getitem, nodes.Getattr)):
            if not (isinstance(node.node, nodes.Name) and node.node.name == "upstream"):
                continue
            if isinstance(node, nodes.Getattr):
                name = node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                name = node.arg.value
            else:
                continue
            found[name] = min(found.get(name, node.lineno), node.lineno)
        return dict(sorted(found.items(), key=lambda item: item[1]))

    def render(self, context: Mapping[str, Any]) -> str:
        return self.environment.from_string(self.text).render(context)


def parse_template(text: str) -> Template:
    return Template(text)


def template_upstream(text: str) -> dict[str, int]:
    """The upstream task names a shell script's template uses, each with its first line;
    raises TemplateError when it does not parse."""
    return parse_template(text).upstream()
