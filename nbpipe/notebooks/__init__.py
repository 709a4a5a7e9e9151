"""Notebook handling: reading sources, executing them with papermill, converting the result."""
