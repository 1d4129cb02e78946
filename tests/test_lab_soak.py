"""A short churn run (two rounds of every event); `make soak` runs 200 cycles and prints the same counts."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab


def test_churn_never_lets_blue_out_through_red_nor_green_into_the_tunnel(lab):
    import soak

    lab.close()  # soak builds its own lab with two providers
    result = soak.run(16)
    print("\n" + soak.report(result))
    assert result["blue_on_red"] == 0 and result["green_in_tunnel"] == 0, result
    assert result["blue_answered"] > 0 and result["green_answered"] > 0
