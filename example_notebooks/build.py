"""Build the example sales pipeline with the nbpipe Python API.

DAG::

    make_raw_data -> clean -> by_region ----> report
                          \\-> monthly_trend -/

Run from anywhere, e.g. from the repo root::

    python example_notebooks/build.py            # incremental build
    python example_notebooks/build.py --force    # rebuild everything
    python example_notebooks/build.py --serial   # one task at a time

Products (executed notebooks, HTML renders and CSVs) go to
``example_notebooks/output/``.

``make_dag`` is importable, but this module does ``from tasks import
make_raw_data``, so ``example_notebooks/`` must be on ``sys.path`` first.
Running the script puts it there automatically (Python adds the script's
folder); importers such as the tests must add it themselves.
"""

import argparse
from pathlib import Path

from tasks import make_raw_data

from nbpipe import DAG
from nbpipe.products import File
from nbpipe.tasks import NotebookRunner, PythonCallable

HERE = Path(__file__).resolve().parent
OUT = HERE / "output"


def _notebook(dag, name, out, data=True):
    """Add notebook ``HERE/<name>.py``; products: executed .ipynb + .html (+ .csv)."""
    product = {"nb": File(out / f"{name}.ipynb"), "html": File(out / f"{name}.html")}
    if data:
        product["data"] = File(out / f"{name}.csv")
    return NotebookRunner(
        HERE / f"{name}.py", product, dag=dag, name=name, nb_product_key=["nb", "html"]
    )


def make_dag(executor="parallel", out=OUT) -> DAG:
    """Return the sales DAG writing its products to ``out``; ``executor`` goes to ``DAG``."""
    out = Path(out)
    dag = DAG(name="sales", executor=executor)

    raw = PythonCallable(make_raw_data, File(out / "raw.csv"), dag=dag, name="make_raw_data")
    clean = _notebook(dag, "clean", out)
    by_region = _notebook(dag, "by_region", out)
    monthly_trend = _notebook(dag, "monthly_trend", out)
    report = _notebook(dag, "report", out, data=False)

    raw >> clean
    clean >> by_region
    clean >> monthly_trend
    by_region >> report
    monthly_trend >> report
    return dag


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--serial", action="store_true", help="run one task at a time")
    args = parser.parse_args(argv)

    report = make_dag("serial" if args.serial else "parallel").build(force=args.force)
    print(report)


if __name__ == "__main__":
    main()
