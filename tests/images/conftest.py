"""Every few of the labelled photos of ../shared/data, for the tests that re-capture them."""
from __future__ import annotations

from pathlib import Path

import pytest

from ..support import labelled_photos


@pytest.fixture(scope="module")
def ecg_pages() -> list[Path]:
    return [item.path for item in labelled_photos("ecg")[::110]]


@pytest.fixture(scope="module")
def fundus_photos() -> list[Path]:
    return [item.path for item in labelled_photos("fundus")[::150]]
