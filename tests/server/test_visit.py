"""The visit benchmark's clicks (bench/visit.py) on the real server, on full cores and without
pauses: each gets the page it asks for, and a click that does not is reported as failed."""
from __future__ import annotations

import time

import pytest

from bench import visit
from bench.harness import Site

pytestmark = pytest.mark.slow


def test_every_click_gets_its_page_and_one_that_does_not_is_reported_failed(server_env):
    site = Site(extra_env=server_env)
    try:
        password = visit.add_clinician(site)
        outcomes = visit.visit(site, password, site.launch(), pause=0)
        locked_out = visit.visit(site, "not the password", time.perf_counter(), pause=0)
    finally:
        site.stop()

    assert [o.step for o in outcomes] == [step.name for step in visit.steps(password)]
    assert [(o.step, o.statuses, o.landed, o.error) for o in outcomes if not o.shown] == []
    assert [o.statuses for o in outcomes] == [(200,), (302, 200)] + [(200,)] * 8
    assert all(visit.failure(o._asdict()) is None for o in outcomes)
    assert outcomes[0].cpu_s > 0  # the boot's CPU, counted in the first wait

    # A wrong password: the log-in page again, and every click after it lands there.
    assert locked_out[0].shown and not any(o.shown for o in locked_out[1:])
    assert [o.landed for o in locked_out[1:]] == [visit.LOGIN_PATH] * 9
    assert "not the page expected" in visit.failure(locked_out[1]._asdict())
