"""REST handlers under ``{base_url}/nbpipe/api/`` (described in ``nbpipe/server/openapi.yaml``).

Handlers are thin: check the input, call the build manager or the pipeline service, send JSON.
Errors are raised as ``nbpipe.server.errors.ApiError`` wherever they are found and turned into a
JSON reply once, in :meth:`ApiHandler.write_error`.

Security comes from jupyter_server's ``APIHandler``: authentication (an unauthenticated request is
refused with 403 unless the server allows unauthenticated access), XSRF checks on every request
that is not a GET when the client authenticates with a cookie, and origin checks. On top,
``@authorized`` asks the server's authorizer about an ``nbpipe:``-prefixed resource:
``nbpipe:pipelines`` (read) and ``nbpipe:builds`` (read; ``execute`` to start a build, since a
build runs code; ``write`` to cancel one).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import ensure_async
from tornado import web
from tornado.web import HTTPError

from nbpipe.server import views
from nbpipe.server.discovery import canonical, check_relative
from nbpipe.server.errors import ApiError, BadRequest, NotFound

if TYPE_CHECKING:
    from nbpipe.server.app import NbpipeApp

BUILD_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_PAGE = 200
#: Target tasks one build request may name (each becomes a word of the build's command line).
MAX_TARGETS = 1000
#: Characters a target task's name may have, and all of them together: the command line has
#: limits (128 KiB a word on Linux, about 2 MiB in all with the environment).
MAX_TARGET_NAME = 4096
MAX_TARGET_TOTAL = 256 * 1024


class ApiHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler: JSON replies, JSON errors, access to the extension's services."""

    @property
    def app(self) -> NbpipeApp:
        return self.extensionapp  # type: ignore[return-value]

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            body = {"message": error.message, **error.fields}
        elif isinstance(error, HTTPError):
            message = error.log_message % error.args if error.log_message else error.reason
            body = {"message": message or self._reason}
        else:  # a bug: the traceback is in the server log, not in the reply
            body = {"message": "internal server error (see the server log)"}
        body["status"] = status_code
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    # -- input ---------------------------------------------------------------------------------
    def body(self, allowed: set[str]) -> dict[str, Any]:
        """The request body: a JSON object with no keys beyond ``allowed``."""
        raw = self.request.body or b"{}"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest(f"the body is not valid JSON: {error}") from None
        except RecursionError:
            raise BadRequest("the body is not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise BadRequest(
                f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return data

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        text = self.get_query_argument(name, None)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise BadRequest(f"{name} must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
        return value

    def bool_argument(self, name: str) -> bool:
        text = (self.get_query_argument(name, "") or "").lower()
        if text in ("", "0", "false", "no"):
            return False
        if text in ("1", "true", "yes"):
            return True
        raise BadRequest(f"{name} must be true or false, got {text!r}")

    def build_id(self, build_id: str) -> str:
        if not BUILD_ID.match(build_id):
            raise NotFound(f"no build {build_id!r}")
        return build_id


class PipelinesHandler(ApiHandler):
    auth_resource = "nbpipe:pipelines"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.app.pipelines.listing())


class PipelineHandler(ApiHandler):
    auth_resource = "nbpipe:pipelines"

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        refresh = self.bool_argument("refresh")
        # Loading a pipeline imports its modules (user code): only for users who may execute.
        may_execute = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", "nbpipe:builds")
        )
        self.reply(
            await self.app.pipelines.detail(path, refresh=refresh, run_code=bool(may_execute))
        )


class TasksOfHandler(ApiHandler):
    """``GET tasks-of?path=FILE``: the tasks whose source or product is FILE (``task_map``)."""

    auth_resource = "nbpipe:pipelines"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        if path is None:
            raise BadRequest("path (a file's path relative to the server root) is required")
        # Loading a pipeline imports its modules (user code): only for users who may execute.
        may_execute = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", "nbpipe:builds")
        )
        self.reply(await self.app.task_map.tasks_of(path, run_code=bool(may_execute)))


class BuildsHandler(ApiHandler):
    auth_resource = "nbpipe:builds"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipeline = self.get_query_argument("pipeline", None)
        if pipeline is not None:
            check_relative(pipeline, allow_hidden=True)
            pipeline = canonical(pipeline)
        limit = self.int_argument("limit", 20, 1, MAX_PAGE)
        offset = self.int_argument("offset", 0, 0, 10**9)
        store = self.app.store
        builds, total = await store.call(store.store.list_builds, pipeline, limit, offset)
        root = self.app.root
        self.reply(
            {
                "builds": [views.build(root, build) for build in builds],
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        data = self.body({"pipeline", "force", "tasks", "skip_upstream"})
        pipeline = data.get("pipeline")
        if not isinstance(pipeline, str):
            raise BadRequest("pipeline (the spec's path relative to the server root) is required")
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise BadRequest("force must be true or false")
        tasks = check_targets(data.get("tasks"))
        skip_upstream = data.get("skip_upstream", False)
        if not isinstance(skip_upstream, bool):
            raise BadRequest("skip_upstream must be true or false")
        if skip_upstream and not tasks:
            raise BadRequest(
                "skip_upstream needs tasks: it builds only the tasks named, not what they need"
            )
        spec_path = await self.app.pipelines.resolve(pipeline)
        pipeline = canonical(pipeline)
        started = await self.app.builds.start(
            pipeline, spec_path, force=force, targets=tasks, skip_upstream=skip_upstream
        )
        url = self.base_url.rstrip("/") + f"/nbpipe/api/builds/{started['id']}"
        self.set_header("Location", url)
        self.reply(started, status=202)


class BuildHandler(ApiHandler):
    auth_resource = "nbpipe:builds"

    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        build_id = self.build_id(build_id)
        self.set_header("Content-Type", "application/json")
        self.finish(await self.app.snapshots.get(build_id))


class CancelHandler(ApiHandler):
    auth_resource = "nbpipe:builds"

    @web.authenticated
    @authorized("write")
    async def post(self, build_id: str) -> None:
        self.reply(await self.app.builds.cancel(self.build_id(build_id)), status=202)


class LogHandler(ApiHandler):
    auth_resource = "nbpipe:builds"

    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        build_id = self.build_id(build_id)
        log = self.app.builds.live_log(build_id)
        if log is None:
            store = self.app.store
            log = await store.call(store.store.get_log, build_id)
            if log is None:
                raise NotFound(f"no build {build_id!r}")
        self.reply({"id": build_id, "log": log})


def check_targets(tasks: Any) -> list[str]:
    """The target task names of a build request (None: every outdated task), or a 400: they
    become words of the build's command line, so their number and length are bounded, checked
    before anything is stored or started."""
    if tasks is None:
        return []
    if not isinstance(tasks, list) or not all(
        isinstance(t, str) and t and "\x00" not in t for t in tasks
    ):
        raise BadRequest("tasks must be a list of task names")
    if len(tasks) > MAX_TARGETS:
        raise BadRequest(
            f"tasks lists {len(tasks)} target tasks; at most {MAX_TARGETS} are allowed "
            "(without tasks, every outdated task is built)"
        )
    longest = max((len(t) for t in tasks), default=0)
    if longest > MAX_TARGET_NAME:
        raise BadRequest(
            f"a task name is too long ({longest} characters; at most {MAX_TARGET_NAME})"
        )
    total = sum(len(t) for t in set(tasks))
    if total > MAX_TARGET_TOTAL:
        raise BadRequest(
            f"the task names are too long together ({total} characters; at most {MAX_TARGET_TOTAL})"
        )
    for name in tasks:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"task name {name!r} is not valid UTF-8") from None
    return tasks


def handlers(prefix: str = "nbpipe/api") -> list[tuple[str, type[ApiHandler]]]:
    build = rf"/{prefix}/builds/(?P<build_id>[^/]+)"
    return [
        (rf"/{prefix}/pipelines/?", PipelinesHandler),
        (rf"/{prefix}/pipelines/(?P<path>.+)", PipelineHandler),
        (rf"/{prefix}/tasks-of/?", TasksOfHandler),
        (rf"/{prefix}/builds/?", BuildsHandler),
        (rf"{build}/cancel/?", CancelHandler),
        (rf"{build}/log/?", LogHandler),
        (rf"{build}/?", BuildHandler),
    ]
