"""Authentication, authorization, XSRF, and confinement of pipeline paths to the server root."""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode

import pytest
from jupyter_server.auth import Authorizer
from server_helpers import api, write_data, write_pipeline
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(60)

ENDPOINTS = [
    ("GET", ("pipelines",)),
    ("GET", ("pipelines", "p", "pipeline.yaml")),
    ("GET", ("builds",)),
    ("POST", ("builds",)),
    ("GET", ("builds", "0" * 32)),
    ("GET", ("builds", "0" * 32, "log")),
    ("POST", ("builds", "0" * 32, "cancel")),
]


@pytest.mark.parametrize(("method", "parts"), ENDPOINTS)
async def test_unauthenticated_requests_are_refused(jp_fetch, jp_root_dir, method, parts):
    write_pipeline(jp_root_dir, "p", {"a": write_data("a")})
    body = json.dumps({"pipeline": "p/pipeline.yaml"}) if method == "POST" else None
    code, reply = await api(
        jp_fetch, *parts, method=method, body=body, headers={"Authorization": ""}
    )
    assert code == 403 and reply["message"]
    code, history = await api(jp_fetch, "builds")
    assert history["total"] == 0


class ReadOnly(Authorizer):
    """Lets users read nbpipe resources but not build; remembers what it was asked."""

    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler, user, action, resource):
        if resource.startswith("nbpipe"):
            ReadOnly.asked.append((action, resource))
            return action == "read"
        return True


class TestAuthorization:
    @pytest.fixture
    def jp_server_config(self, state_dir):
        return {
            "ServerApp": {
                "jpserver_extensions": {"nbpipe.server": True},
                "authorizer_class": ReadOnly,
            },
            "NbpipeApp": {"state_dir": str(state_dir)},
        }

    async def test_the_authorizer_decides_on_nbpipe_resources(self, jp_fetch, jp_root_dir):
        ReadOnly.asked.clear()
        write_pipeline(jp_root_dir, "p", {"a": write_data("a")})
        code, _ = await api(jp_fetch, "pipelines")
        assert code == 200
        code, _ = await api(jp_fetch, "builds")
        assert code == 200
        code, reply = await api(
            jp_fetch, "builds", method="POST", body={"pipeline": "p/pipeline.yaml"}
        )
        assert code == 403 and "not authorized" in reply["message"]
        code, _ = await api(jp_fetch, "builds", "0" * 32, "cancel", method="POST")
        assert code == 403
        assert ReadOnly.asked == [
            ("read", "nbpipe:pipelines"),
            ("read", "nbpipe:builds"),
            ("execute", "nbpipe:builds"),
            ("write", "nbpipe:builds"),
        ]

    async def test_a_user_who_may_not_execute_does_not_run_a_pipelines_code(
        self, jp_fetch, jp_root_dir, tmp_path
    ):
        """Loading a pipeline for its status imports its task modules: a user who may not
        execute gets the last status loaded for someone who may, or a 403, never a load
        (issue 10)."""
        imported = tmp_path / "imported"
        folder = jp_root_dir / "p"
        folder.mkdir()
        (folder / "fns.py").write_text(
            f"open({str(imported)!r}, 'w').close()\n\ndef a(product):\n    pass\n"
        )
        (folder / "pipeline.yaml").write_text("tasks:\n  - {source: fns.a, product: a.txt}\n")
        code, reply = await api(jp_fetch, "pipelines", "p", "pipeline.yaml")
        assert code == 403 and "execute" in reply["message"], reply
        assert not imported.exists()


async def test_cookie_authenticated_posts_need_the_xsrf_token(
    jp_serverapp, http_server_client, jp_base_url, jp_root_dir
):
    """A browser session (cookie, no token header) cannot start a build without the XSRF
    token: jupyter_server's checks apply to the extension's handlers."""
    write_pipeline(jp_root_dir, "p", {"a": write_data("a")})
    token = jp_serverapp.identity_provider.token
    base = jp_base_url.rstrip("/")
    # Logging in with the token in the URL sets the login cookie (and the _xsrf cookie).
    response = await http_server_client.fetch(
        f"{base}/api/status?{urlencode({'token': token})}", follow_redirects=False
    )
    cookies = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        cookies[name] = rest.split(";", 1)[0]
    response = await http_server_client.fetch(f"{base}/login")  # sets _xsrf
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        cookies[name] = rest.split(";", 1)[0]
    assert "_xsrf" in cookies and len(cookies) >= 2, cookies
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    url = f"{base}/nbpipe/api/builds"
    body = json.dumps({"pipeline": "p/pipeline.yaml"})

    response = await http_server_client.fetch(url, headers={"Cookie": cookie})
    assert response.code == 200  # reading with the session cookie is fine

    with pytest.raises(HTTPClientError) as refused:
        await http_server_client.fetch(url, method="POST", body=body, headers={"Cookie": cookie})
    assert refused.value.code == 403
    assert "xsrf" in refused.value.response.body.decode().lower()

    response = await http_server_client.fetch(
        url,
        method="POST",
        body=body,
        headers={"Cookie": cookie, "X-XSRFToken": cookies["_xsrf"]},
    )
    assert response.code == 202


@pytest.fixture
def outside(tmp_path):
    """A pipeline outside the server root."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text("tasks: []\n")
    return folder


@pytest.mark.parametrize(
    "path",
    [
        "../outside/pipeline.yaml",
        "p/../../outside/pipeline.yaml",
        "link/pipeline.yaml",
        "pipeline-link.yaml",
        "ABSOLUTE",
    ],
)
async def test_paths_outside_the_root_are_refused(jp_fetch, jp_root_dir, outside, path):
    os.symlink(outside, jp_root_dir / "link")
    os.symlink(outside / "pipeline.yaml", jp_root_dir / "pipeline-link.yaml")
    write_pipeline(jp_root_dir, "p", {"a": write_data("a")})
    if path == "ABSOLUTE":
        path = str(outside / "pipeline.yaml")
    code, reply = await api(jp_fetch, "builds", method="POST", body={"pipeline": path})
    assert code == 403, reply
    assert "root" in reply["message"]
    code, reply = await api(jp_fetch, "pipelines", path.lstrip("/"))
    assert code in (403, 404), reply
    code, history = await api(jp_fetch, "builds")
    assert history["total"] == 0

    code, listing = await api(jp_fetch, "pipelines")
    assert [row["path"] for row in listing["pipelines"]] == ["p/pipeline.yaml"]


@pytest.mark.parametrize(
    "raw",
    [
        "%2e%2e/outside/pipeline.yaml",
        "..%2Foutside%2Fpipeline.yaml",
        "%2Fetc%2Fpipeline.yaml",
        "/etc/pipeline.yaml",
        ".hidden/pipeline.yaml",
        "p%00/pipeline.yaml",
    ],
)
async def test_encoded_escapes_in_urls_are_refused(
    http_server_client, jp_auth_header, jp_base_url, jp_root_dir, outside, raw
):
    (jp_root_dir / ".hidden").mkdir()
    (jp_root_dir / ".hidden" / "pipeline.yaml").write_text("tasks: []\n")
    url = f"{jp_base_url.rstrip('/')}/nbpipe/api/pipelines/{raw}"
    with pytest.raises(HTTPClientError) as refused:
        await http_server_client.fetch(url, headers=jp_auth_header)
    assert refused.value.code in (400, 403, 404)
    reply = json.loads(refused.value.response.body)
    assert reply["message"]
