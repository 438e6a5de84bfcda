"""dopt's language server (``dopt lsp``, or ``python -m dopt.lsp``).

pygls is imported only when the server starts, so importing this package costs nothing.
"""

from __future__ import annotations


def serve() -> None:
    """Run the language server on standard input/output (see :mod:`dopt.lsp.server`)."""
    from dopt.lsp.server import serve as _serve

    _serve()


__all__ = ["serve"]
