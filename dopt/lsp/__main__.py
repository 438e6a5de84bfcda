"""``python -m dopt.lsp``: run the language server on standard input/output."""

from dopt.lsp import serve

serve()
