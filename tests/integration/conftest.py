from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.service import RunningService, start_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("vir"))
    yield running
    running.stop()
