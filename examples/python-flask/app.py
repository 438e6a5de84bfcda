"""A tiny Flask service used to measure what dopt's rewrites do to a real build."""

import os

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello from flask\n"


@app.get("/health")
def health():
    return jsonify(status="ok")


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
