"""The semantic layer: stages, ARG scoping and the context each instruction runs in."""

from __future__ import annotations

from dopt.optimizer.semantic import build_model, expand
from dopt.optimizer.syntax import parse

MULTI_STAGE = """\
ARG PY=3.11
ARG REGISTRY
FROM python:${PY}-slim AS build
ARG PY
ENV APP_HOME=/srv/app PATH=/venv/bin:$PATH
WORKDIR $APP_HOME
WORKDIR src
USER builder
RUN pip install -r requirements.txt
FROM build AS test
RUN pytest
FROM ${REGISTRY}/runtime:1 AS runtime
FROM --platform=linux/arm64 debian:12@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
COPY --from=build /venv /venv
SHELL ["/bin/bash", "-c"]
RUN echo done
"""


def test_stages_with_names_bases_and_parents() -> None:
    model = build_model(parse(MULTI_STAGE))
    build, test, runtime, final = model.stages
    assert (build.index, build.name, build.image) == (0, "build", "python:3.11-slim")
    ref = build.reference
    assert ref is not None and (ref.domain, ref.repository, ref.tag) == ("docker.io", "library/python", "3.11-slim")
    assert test.parent is build and test.reference is None
    assert runtime.image_resolved is False and runtime.reference is None  # REGISTRY has no value
    assert final.platform == "linux/arm64"
    assert final.reference is not None and final.reference.digest.startswith("sha256:0123")
    assert model.final_stage is final
    assert model.is_referenced(build) and not model.is_referenced(runtime)


def test_arg_scoping_follows_buildkit() -> None:
    doc = parse(MULTI_STAGE)
    model = build_model(doc)
    run_pip = doc.instructions[8]
    scope = model.scope_of(run_pip)
    # A global ARG is visible in a stage only after it is redeclared there, with its default.
    assert scope.args == {"PY": "3.11"}
    assert "REGISTRY" not in scope.variables()
    run_test = doc.instructions[10]
    assert model.scope_of(run_test).args == {}  # ARGs do not carry into a child stage ...
    assert model.scope_of(run_test).env["APP_HOME"] == "/srv/app"  # ... ENV does


def test_env_workdir_user_and_shell_in_force() -> None:
    doc = parse(MULTI_STAGE)
    model = build_model(doc)
    scope = model.scope_of(doc.instructions[8])
    assert scope.env["APP_HOME"] == "/srv/app"
    assert "PATH" not in scope.env  # it extends the base image's PATH, whose value dopt cannot see
    assert scope.workdir == "/srv/app/src"
    assert scope.user == "builder"
    last = doc.instructions[-1]
    assert model.scope_of(last).shell == ("/bin/bash", "-c")
    assert model.scope_of(last).workdir is None  # debian's own WORKDIR is not known
    assert model.stage_of(last) is model.stages[3]


def test_expand_substitutes_like_buildkit_and_refuses_unknowns() -> None:
    variables = {"NAME": "app", "EMPTY": ""}
    assert expand("/srv/${NAME}", variables) == "/srv/app"
    assert expand("${EMPTY:-fallback}", variables) == "fallback"
    assert expand("${EMPTY-kept}", variables) == ""
    assert expand("'$NAME'", variables) == "$NAME"
    assert expand("$MISSING/x", variables) is None
    assert expand("${NAME%p}", variables) == "ap"
