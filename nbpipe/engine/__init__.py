"""The engine: DAGs, the scheduler loop, the event contract, products, reports and status.

It knows nothing of the command line, the Jupyter server or the browser; those front ends
depend on it, never the reverse (see docs/architecture.md).
"""
