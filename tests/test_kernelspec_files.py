"""Kernelspecs read from their files (``nbpipe.notebooks.kernelspec_files``) are exactly what
jupyter_client's manager finds, on this machine and on folders made for the test; and a render
does not import jupyter_client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbpipe.notebooks.kernelspec_files import installed_kernelspecs
from nbpipe.notebooks.kernelspecs import QuickKernelSpecManager


def jupyter_clients_answer() -> dict:
    return QuickKernelSpecManager().get_all_specs()


def install(folder: Path, name: str, spec) -> None:
    (folder / name).mkdir(parents=True)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    (folder / name / "kernel.json").write_text(text)


def test_the_installed_kernels_are_jupyter_clients():
    assert installed_kernelspecs() == jupyter_clients_answer()


def test_folders_names_defaults_and_broken_specs_as_jupyter_client(tmp_path, monkeypatch):
    first, second = tmp_path / "first" / "kernels", tmp_path / "second" / "kernels"
    install(first, "Mixed-Case", {"argv": ["x", "{connection_file}"], "language": "x"})
    install(first, "twice", {"argv": ["from-first"], "language": "a", "interrupt_mode": "MESSAGE"})
    install(second, "twice", {"argv": ["from-second"], "language": "b"})
    install(second, "broken", "{not json")
    install(second, "bad-mode", {"argv": ["x"], "interrupt_mode": "sometimes"})
    (second / "no-spec-file").mkdir()
    monkeypatch.setenv("JUPYTER_PATH", f"{tmp_path / 'first'}:{tmp_path / 'second'}")

    ours = installed_kernelspecs()

    assert ours == jupyter_clients_answer()
    assert ours["mixed-case"]["spec"]["env"] == {}, "defaults filled in"
    assert ours["twice"]["spec"]["argv"] == ["from-first"], "earlier folders win"
    assert {"broken", "bad-mode", "no-spec-file"}.isdisjoint(ours)


def test_a_spec_naming_a_provisioner_is_left_to_jupyter_client(tmp_path, monkeypatch):
    folder = tmp_path / "share" / "kernels"
    metadata = {"kernel_provisioner": {"provisioner_name": "no-such-provisioner"}}
    install(folder, "provisioned", {"argv": ["x"], "language": "x", "metadata": metadata})
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))

    ours = installed_kernelspecs()

    assert "provisioned" not in ours, "jupyter_client drops a spec whose provisioner is missing"
    assert ours == jupyter_clients_answer()


@pytest.mark.parametrize("command", ["render", "status"])
def test_rendering_a_notebook_pipeline_does_not_import_jupyter_client(tmp_path, command):
    from notebook_files import write_notebook

    write_notebook(tmp_path / "nb.ipynb", "print(1)")
    (tmp_path / "pipeline.yaml").write_text(
        "tasks:\n  - {source: nb.ipynb, product: out/nb.ipynb}\n"
    )
    code = (
        "import sys\nfrom nbpipe.spec import DAGSpec\n"
        "dag = DAGSpec('pipeline.yaml').to_dag()\n"
        f"dag.{command}()\n"
        "print('jupyter_client' in sys.modules)"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "False"
