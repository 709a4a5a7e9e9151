"""Kernels forked from a template process (``nbpipe.notebooks.forking``): each notebook still gets
a fresh process of its own; interrupt, Ctrl-C, a kernel or a worker that dies behave as with
spawned kernels; nothing is left behind; kernels that cannot be forked are spawned; preloads that
fail are clear errors. Real kernels, real papermill; marker files, never sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest
from build_process import start_build
from engine_tasks import write_name
from notebook_files import processes_with_marker, write_notebook
from wait_helpers import touch_code, wait_for_marker, wait_until

from nbpipe import DAG
from nbpipe.exceptions import DAGBuildError
from nbpipe.executors import Parallel, Serial
from nbpipe.notebooks.forking import kernel_launch, runs_this_ipykernel
from nbpipe.products import File
from nbpipe.spec import DAGSpec
from nbpipe.spec.errors import SpecError
from nbpipe.tasks import NotebookRunner, PythonCallable

TEMPLATE = "nbpipe.notebooks.template"

#: Prints what tells kernels apart, then defines a variable the next notebook must not see.
REPORT = """
import gc, json, os, random, sys
preloaded = "numpy" in sys.modules
import numpy
with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
    parent = f.read().replace(b"\\0", b" ").decode()
print(json.dumps({
    "pid": os.getpid(), "ppid": os.getppid(), "parent": parent,
    "jpy_parent_pid": os.environ.get("JPY_PARENT_PID"), "cwd": os.getcwd(),
    "leaked": "leaked" in globals(), "preloaded": preloaded,
    "random": random.random(), "numpy": float(numpy.random.rand()),
    "gc": gc.isenabled(), "frozen": gc.get_freeze_count(),
}))
leaked = 1
"""


@pytest.fixture
def marker(monkeypatch) -> str:
    """An environment variable that every process of the build inherits (kernels included)."""
    name = f"NBPIPE_TEST_{uuid.uuid4().hex}"
    monkeypatch.setenv(name, "1")
    _EARLIER[name] = {p.pid for p in psutil.Process().children(recursive=True)}
    return name


#: Per marker, this process's children before the test (a session-wide Dask cluster, say).
_EARLIER: dict[str, set[int]] = {}


def report_of(ipynb: Path) -> dict:
    cells = json.loads(ipynb.read_text())["cells"]
    text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    return json.loads(text.strip().splitlines()[-1])


def assert_nothing_left(marker: str) -> None:
    """No process of the build runs any more: no child of this process (workers, templates),
    and no process with the build's environment (kernels, even reparented ones)."""

    def left() -> list[str]:
        pids = {p.pid for p in psutil.Process().children(recursive=True)} - _EARLIER[marker]
        pids |= set(processes_with_marker(marker))
        found = []
        for pid in pids:
            try:
                found.append(" ".join(psutil.Process(pid).cmdline()))
            except psutil.NoSuchProcess:
                continue
        return found

    wait_until(lambda: not left(), lambda: f"the build's processes to end: {left()}", timeout=20)


@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_every_notebook_gets_a_fresh_forked_kernel(workdir, marker, executor):
    write_notebook(workdir / "report.ipynb", REPORT)
    chosen = Serial() if executor == "serial" else Parallel(processes=2, start_method="fork")
    dag = DAG(executor=chosen, preload=["numpy"])
    for i in range(3):
        NotebookRunner("report.ipynb", File(f"out/{i}.ipynb"), dag, name=f"n{i}")

    dag.build()

    reports = [report_of(workdir / f"out/{i}.ipynb") for i in range(3)]
    assert len({r["pid"] for r in reports}) == 3, "each notebook runs in a process of its own"
    for r in reports:
        assert TEMPLATE in r["parent"], "forked by the kernel template"
        assert r["jpy_parent_pid"] == str(r["ppid"]), "the kernel exits when its template does"
        assert r["cwd"] == str(workdir)
        assert r["preloaded"] and not r["leaked"]
        assert r["gc"], "the kernel collects garbage as any process does"
        assert r["frozen"] > 1000, "except what the template loaded, frozen before the fork"
    assert len({r["random"] for r in reports}) == 3, "random is reseeded in each kernel"
    assert len({r["numpy"] for r in reports}) == 3, "so is numpy's global generator"
    assert_nothing_left(marker)


def test_a_forked_kernel_is_interrupted_mid_cell(tmp_path, marker):
    from jupyter_client import BlockingKernelClient
    from jupyter_core.utils import run_sync

    from nbpipe.notebooks.forking import stop_template
    from nbpipe.notebooks.kernels import stop_kernel
    from nbpipe.notebooks.provisioner import ForkedProcess, ForkingKernelManager

    busy = tmp_path / "busy"
    manager = ForkingKernelManager(kernel_name="python3")
    client = None
    try:
        run_sync(manager.start_kernel)(cwd=str(tmp_path))
        assert isinstance(manager.provisioner.process, ForkedProcess)
        client = BlockingKernelClient()
        client.load_connection_info(manager.get_connection_info())
        client.start_channels()
        client.wait_for_ready(timeout=60)
        request = client.execute(f"{touch_code(busy)}\nimport time\nwhile True: time.sleep(0.01)")
        wait_for_marker(busy, "the cell to be running")

        run_sync(manager.interrupt_kernel)()

        reply = client.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == request
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        again = client.execute_interactive("x = 41 + 1", timeout=60)
        assert again["content"]["status"] == "ok", "the kernel goes on after the interrupt"
    finally:
        if client is not None:
            client.stop_channels()
        stop_kernel(manager)
        stop_template()
    assert_nothing_left(marker)


@pytest.mark.parametrize("manager_class", ["ForkingKernelManager", "OwnKernelManager"])
def test_kernels_start_and_stop_without_idle_pauses(tmp_path, marker, monkeypatch, manager_class):
    """jupyter_client sleeps 10 ms after it starts a kernel and after it stops one (for its own
    tests), and polls a killed kernel only every tenth of a second: nbpipe's managers, forked
    kernels and spawned ones, do not sleep those 10 ms, keep the ``ready`` future as
    jupyter_client does, and poll a killed kernel within milliseconds."""
    import asyncio

    from jupyter_core.utils import run_sync

    from nbpipe.notebooks import provisioner
    from nbpipe.notebooks.forking import stop_template
    from nbpipe.notebooks.kernels import stop_kernel

    pauses: list[float] = []
    sleep = asyncio.sleep

    async def recorded_sleep(delay, *args, **kwargs):
        pauses.append(delay)
        return await sleep(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
    manager = getattr(provisioner, manager_class)(kernel_name="python3")
    try:
        run_sync(manager.start_kernel)(cwd=str(tmp_path))
        forked = isinstance(manager.provisioner.process, provisioner.ForkedProcess)
        assert forked == (manager_class == "ForkingKernelManager")
        assert manager.ready.done() and manager.ready.exception() is None
        assert run_sync(manager.is_alive)()
        starting, pauses[:] = list(pauses), []
        run_sync(manager.shutdown_kernel)(now=True)
        assert manager.ready.done() and manager.ready.exception() is None
        assert not run_sync(manager.is_alive)()
    finally:
        stop_kernel(manager)
        stop_template()
    assert 0.01 not in starting + pauses, (starting, pauses)
    assert pauses[:1] in ([], [provisioner.QUICK_POLL]), pauses
    assert_nothing_left(marker)


def test_a_kernel_that_dies_fails_its_task_naming_the_cell(workdir, marker):
    write_notebook(workdir / "dies.ipynb", "print('before')", "import os\nos._exit(3)")
    dag = DAG()
    NotebookRunner("dies.ipynb", File("out/dies.ipynb"), dag)

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    message = str(raised.value)
    assert "dies.ipynb, cell 3: DeadKernelError" in message
    assert "the kernel died while running this cell (exit code 3)" in message
    assert not (workdir / "out/dies.ipynb").exists()
    assert_nothing_left(marker)


def test_a_worker_that_dies_takes_its_template_and_kernel_with_it(workdir, marker):
    """The kernel's template dies with its worker, and the kernel with its template. (The
    worker's template is forked by the build's shared template, which outlives the worker.)"""
    import threading

    reached = workdir / "reached"
    write_notebook(
        workdir / "sleeper.ipynb", f"import time\n{touch_code(reached)}\ntime.sleep(300)"
    )
    dag = DAG(executor=Parallel(processes=1, start_method="fork"))
    NotebookRunner("sleeper.ipynb", File("out/sleeper.ipynb"), dag)

    def kill_the_worker() -> None:
        for _ in range(2):  # the build retries a task whose worker died once
            wait_for_marker(reached, "the notebook to be running")
            reached.unlink()
            for child in psutil.Process().children():
                if child.pid not in _EARLIER[marker] and TEMPLATE not in " ".join(child.cmdline()):
                    child.kill()  # the worker (the build's only one)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    try:
        with pytest.raises(DAGBuildError, match="the worker process running this task died"):
            dag.build()
    finally:
        killer.join()

    assert_nothing_left(marker)


def _sleepy_project(project: Path, reached: Path, pipeline: str) -> None:
    project.mkdir()
    write_notebook(project / "sleepy.ipynb", f"{touch_code(reached)}\nimport time\ntime.sleep(300)")
    (project / "pipeline.yaml").write_text(textwrap.dedent(pipeline))


def test_ctrl_c_of_a_serial_build_stops_its_forked_kernel_and_template(tmp_path):
    project, reached = tmp_path / "project", tmp_path / "reached"
    _sleepy_project(
        project, reached, "tasks:\n  - {source: sleepy.ipynb, product: out/sleepy.ipynb}\n"
    )
    build = start_build(project, own_process_group=True)
    wait_until(lambda: reached.exists() or build.poll() is not None, "the notebook's sleeping cell")
    assert build.poll() is None, build.communicate()
    family = psutil.Process(build.pid).children(recursive=True)
    templates = [p for p in family if TEMPLATE in " ".join(p.cmdline())]
    template_pids = {p.pid for p in templates}
    assert any(p.ppid() in template_pids for p in templates), "the kernel is the template's child"

    os.killpg(build.pid, signal.SIGINT)
    _, stderr = build.communicate(timeout=60)

    assert build.returncode == 130, stderr
    assert "notebook kernels are forked from a template process" in stderr
    _, alive = psutil.wait_procs(family, timeout=20)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


def test_a_template_runs_its_exit_handlers(workdir, marker):
    """The template ends without the interpreter's teardown of the modules it imported for its
    kernels (pandas...: most of its stop, and every build waits for it), but as a process that
    exits: the exit handlers its preloads registered run."""
    (workdir / "ending.py").write_text(
        "import atexit, os, pathlib\n"
        "here = pathlib.Path(__file__).parent\n"
        "atexit.register(lambda: (here / f'exit-handler-{os.getpid()}').touch())\n"
    )
    write_notebook(workdir / "report.ipynb", REPORT)
    dag = DAG(executor=Serial(), preload=["ending"])
    NotebookRunner("report.ipynb", File("out/report.ipynb"), dag)

    dag.build()

    assert_nothing_left(marker)
    template = report_of(workdir / "out/report.ipynb")["ppid"]
    assert (workdir / f"exit-handler-{template}").exists()


def test_the_template_loads_with_the_collector_off_and_its_kernels_collect(workdir, marker):
    """What the template loads lives as long as it does: it imports with the garbage collector
    off (a collection would scan it all for nothing), and its kernels run with it on."""
    (workdir / "loaded_early.py").write_text("import gc\ncollector_on = gc.isenabled()\n")
    write_notebook(
        workdir / "nb.ipynb",
        "import gc, sys\nprint(sys.modules['loaded_early'].collector_on, gc.isenabled())",
    )
    dag = DAG(executor=Serial(), preload=["loaded_early"])
    NotebookRunner("nb.ipynb", File("out/nb.ipynb"), dag)

    dag.build()

    cells = json.loads((workdir / "out/nb.ipynb").read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert printed.split() == ["False", "True"]
    assert_nothing_left(marker)


@pytest.mark.parametrize("executor", ["serial", "parallel"])
def test_with_forking_off_the_default_kernel_is_spawned_through_nbpipes_launcher(
    workdir, marker, executor
):
    """A spawned kernel of this interpreter's default kernelspec runs as
    ``python -m nbpipe.notebooks.launcher``: ipykernel as its launcher runs it, ending as forked
    kernels end; what IPython set up is frozen before the notebook runs, and the collector on."""
    write_notebook(
        workdir / "nb.ipynb",
        "import gc, os\n"
        "command = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "print(command[1:3] == [b'-m', b'nbpipe.notebooks.launcher'], os.getppid() != 1)\n"
        "print(gc.get_freeze_count() > 1000, gc.isenabled())",
    )
    chosen = Serial() if executor == "serial" else Parallel(processes=2, start_method="fork")
    dag = DAG(executor=chosen, fork_kernels=False)
    NotebookRunner("nb.ipynb", File("out/nb.ipynb"), dag)

    dag.build()

    cells = json.loads((workdir / "out/nb.ipynb").read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert printed.split() == ["True"] * 4
    assert_nothing_left(marker)


def test_a_kernelspec_that_is_not_this_ipykernel_is_spawned(tmp_path):
    """A kernelspec with other arguments (as a conda environment's, R's or Julia's would be)
    starts its kernel as today: a new process, child of the build; the build says so."""
    spec = tmp_path / "share/kernels/other/kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-X", "utf8", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": "Other", "language": "python"}))
    project = tmp_path / "project"
    project.mkdir()
    write_notebook(project / "report.ipynb", REPORT)
    (project / "pipeline.yaml").write_text(
        "tasks:\n  - {source: report.ipynb, product: out/report.ipynb, kernelspec_name: other}\n"
    )
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "share")}
    env.pop("NBPIPE_ENTRY_POINT", None)
    build = subprocess.run(
        [sys.executable, "-m", "nbpipe", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert build.returncode == 0, build.stderr
    assert "notebook kernels start as new processes (kernel 'other' runs" in build.stderr
    report = report_of(project / "out/report.ipynb")
    assert TEMPLATE not in report["parent"] and "nbpipe build" in report["parent"]


@pytest.mark.parametrize(
    ("module", "source", "error"),
    [
        (
            "threaded",
            "import threading\nthreading.Thread(target=threading.Event().wait, daemon=True).start()",
            "preload module 'threaded' cannot be preloaded in the kernel template: importing it "
            "started threads",
        ),
        (
            "broken",
            "import no_such_module_for_nbpipe",
            "preload module 'broken' failed to import in the kernel template: "
            "ModuleNotFoundError: No module named 'no_such_module_for_nbpipe'",
        ),
    ],
)
def test_a_preload_that_starts_threads_or_fails_is_a_clear_error(
    workdir, marker, module, source, error
):
    (workdir / f"{module}.py").write_text(source + "\n")
    write_notebook(workdir / "nb.ipynb", "print('never runs')")
    dag = DAG(preload=[module])
    NotebookRunner("nb.ipynb", File("out/nb.ipynb"), dag)

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    assert error in str(raised.value)
    assert_nothing_left(marker)


def test_workers_whose_template_failed_fail_each_notebook_with_its_error(workdir, marker):
    """Two notebooks on two workers: each worker would start a kernel as it starts; the
    template's import error reaches every notebook, the workers stay usable for the rest."""
    (workdir / "broken.py").write_text("import no_such_module_for_nbpipe\n")
    write_notebook(workdir / "nb.ipynb", "print('never runs')")
    dag = DAG(preload=["broken"], executor=Parallel(processes=2, start_method="fork"))
    for name in ("a", "b"):
        NotebookRunner("nb.ipynb", File(f"out/{name}.ipynb"), dag, name=name)
    PythonCallable(write_name, File("out/other.txt"), dag, name="other")

    with pytest.raises(DAGBuildError) as raised:
        dag.build()

    assert set(raised.value.failures) == {"a", "b"}
    assert "preload module 'broken' failed to import" in str(raised.value)
    assert (workdir / "out/other.txt").exists(), "a task that needs no kernel still runs"
    assert_nothing_left(marker)


def test_a_serial_build_does_not_import_the_iri_checker(workdir):
    """The building process runs the notebook (Serial) without importing rfc3987_syntax."""
    write_notebook(workdir / "nb.ipynb", "print('hello')")
    code = textwrap.dedent(
        """
        import sys
        from nbpipe import DAG
        from nbpipe.products import File
        from nbpipe.tasks import NotebookRunner
        dag = DAG()
        NotebookRunner("nb.ipynb", File("out/nb.ipynb"), dag)
        dag.build()
        print("rfc3987_syntax" in sys.modules)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"


# -- the choice of fork or spawn, without building ------------------------------------------------
def test_the_switches_turn_forking_off(monkeypatch):
    assert kernel_launch("python3", DAG(preload=["numpy"])) == (("numpy",), None)
    assert kernel_launch("python3", DAG(fork_kernels=False)) == (None, "fork_kernels is off")
    monkeypatch.setenv("NBPIPE_FORK_KERNELS", "0")
    assert kernel_launch("python3", DAG()) == (None, "NBPIPE_FORK_KERNELS=0")


def test_only_this_interpreters_default_launcher_is_forked():
    default = ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert runs_this_ipykernel(["python", *default])
    assert runs_this_ipykernel([sys.executable, *default])
    assert not runs_this_ipykernel(["/opt/conda/envs/other/bin/python", *default])
    assert not runs_this_ipykernel(["python", *default, "--matplotlib=inline"])
    assert not runs_this_ipykernel(["R", "--slave", "-e", "IRkernel::main()", "--args", "{x}"])


def test_meta_sets_preload_and_fork_kernels(tmp_path):
    write_notebook(tmp_path / "nb.ipynb", "print(1)")
    tasks = [{"source": "nb.ipynb", "product": "out/nb.ipynb"}]
    spec = {"meta": {"preload": ["pandas", "numpy"], "fork_kernels": False}, "tasks": tasks}
    dag = DAGSpec(spec, folder=tmp_path).to_dag()
    assert (dag.preload, dag.fork_kernels) == (("pandas", "numpy"), False)
    assert (DAGSpec({"tasks": tasks}, folder=tmp_path).to_dag().preload) == ()
    with pytest.raises(SpecError, match=r"meta.preload must be a list of module names"):
        DAGSpec({"meta": {"preload": "pandas"}, "tasks": tasks}, folder=tmp_path)
    with pytest.raises(SpecError, match=r"meta.fork_kernels must be true or false"):
        DAGSpec({"meta": {"fork_kernels": "no"}, "tasks": tasks}, folder=tmp_path)


def test_wait_or_kill_waits_for_the_end_and_kills_what_outlives_its_timeout():
    from nbpipe.notebooks.forking import wait_or_kill

    ending = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    wait_or_kill(ending, 60)
    assert ending.returncode == 3

    hanging = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    wait_or_kill(hanging, 0.2)
    assert hanging.returncode == -signal.SIGKILL
