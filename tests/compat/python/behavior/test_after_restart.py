"""Behavioural cohorts with the real posthog SDK, part 2 (after scripts/compat.sh restarted the
server): the counts survived, and the flag turns off once the 5-minute window has passed on the
server's (test) clock."""

import requests

from test_before_restart import BUYER, NEAR_BUYER


def test_counts_survive_the_restart_and_the_window_closes(project, remote):
    assert remote.feature_enabled("recent-buyer", BUYER) is True
    assert remote.feature_enabled("recent-buyer", NEAR_BUYER) is False

    r = requests.post(f"{project.host}/_test/clock", json={"advance_seconds": 5 * 60 + 20}, timeout=10)
    assert r.status_code == 200, r.text
    assert remote.feature_enabled("recent-buyer", BUYER) is False
