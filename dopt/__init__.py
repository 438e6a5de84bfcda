"""dopt: rewrite Dockerfiles into smaller, faster-rebuilding, safer ones."""

__version__ = "0.1.0"
