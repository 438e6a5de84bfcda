"""What every Docker test needs: the engine, or a failure that says what is missing (never a skip)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dopt.verify.engine import Engine, NoEngineError, find_client


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A BuildKit engine holding the test module's ``BASE_IMAGES`` (local stand-ins), cleaned up after."""
    module = request.module.__name__
    try:
        with Engine(find_client(), buildkit=True) as shared:
            if not shared.info().buildkit:
                pytest.fail(f"{shared.client} cannot build with BuildKit; {module} needs it", pytrace=False)
            missing = [image for image in request.module.BASE_IMAGES if not shared.has_image(image)]
            if missing:
                pytest.fail(
                    f"base image(s) {', '.join(missing)} missing: run shared/docker/make-base-images first",
                    pytrace=False,
                )
            yield shared
    except NoEngineError as err:
        pytest.fail(f"{module} needs a running Docker engine: {err}", pytrace=False)
