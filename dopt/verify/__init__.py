"""Prove a rewrite: build the original and the fixed Dockerfile and compare them.

``verify_texts`` is the core (two Dockerfile texts and a context in, a
:class:`Verification` out); ``command.run_verify`` / ``command.run_layers``
are what the CLI calls; ``bench`` measures the example apps.
"""

from dopt.verify.compare import Verification, VerifyOptions, compare, verify_texts
from dopt.verify.engine import Engine, EngineError, NoEngineError
from dopt.verify.layers import LayerAnalysis, analyze_image, render_html, render_terminal
from dopt.verify.measure import Measurement, measure

__all__ = [
    "Engine",
    "EngineError",
    "LayerAnalysis",
    "Measurement",
    "NoEngineError",
    "Verification",
    "VerifyOptions",
    "analyze_image",
    "compare",
    "measure",
    "render_html",
    "render_terminal",
    "verify_texts",
]
