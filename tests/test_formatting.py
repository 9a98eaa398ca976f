"""How every page, message and API answer writes a number and a size (predictors/formatting.py)."""
from __future__ import annotations

import pytest

from predictors.formatting import file_size, percent


# No model here is always right, so no page prints a certainty.

@pytest.mark.parametrize("probability, shown", [
    (0.9999, "> 99%"), (0.991, "> 99%"), (0.99, "99%"), (0.985, "99%"), (0.5, "50%"), (0.014, "1%"), (0.01, "1%"),
    (0.0099, "< 1%"), (0.0, "< 1%"), (1.0, "> 99%"),
])
def test_probabilities_are_shown_without_false_certainty(probability, shown):
    assert percent(probability) == shown


@pytest.mark.parametrize("size, words", [(10485760, "10 MB"), (13_200_000, "12.6 MB"), (37_000, "37 kB"),
                                         (1_000_000, "977 kB"), (1, "1 kB")])
def test_sizes_are_given_in_the_unit_of_the_limit(size, words):
    assert file_size(size) == words
