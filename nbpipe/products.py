"""Products: what tasks write. ``File`` is the public name (``from nbpipe.products import File``,
as ``from ploomber.products import File``); the machinery lives in ``nbpipe.engine.products``."""

from nbpipe.engine.products import File, MultiProduct

__all__ = ["File", "MultiProduct"]
