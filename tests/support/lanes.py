"""Which lane a test run is (`scripts/test` runs two side by side): its database, and its
share of the generated inputs."""

from __future__ import annotations

import os


def database_lane() -> str:
    """The database every Wharf of this run uses: `WHARF_TEST_DATABASE`, sqlite or postgresql."""
    lane = os.environ.get("WHARF_TEST_DATABASE", "sqlite")
    if lane not in ("sqlite", "postgresql"):
        raise ValueError(f"WHARF_TEST_DATABASE must be sqlite or postgresql, not {lane!r}")
    return lane


def _share() -> tuple[int, int]:
    """`WHARF_TEST_SHARE`, "k/n": this is the k-th of n lanes running side by side (unset: 1/1,
    a lane running alone)."""
    share = os.environ.get("WHARF_TEST_SHARE", "1/1")
    k, _, n = share.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"WHARF_TEST_SHARE must be k/n with 1 <= k <= n, not {share!r}")
    return int(k), int(n)


def runs_alone() -> bool:
    """No other lane runs beside this one: it runs what the lanes would share out."""
    return _share()[1] == 1


def generated_share() -> slice:
    """This lane's share of a generated run's inputs (a slice of the list of them). The lanes
    divide such inputs between them rather than each sending all: every input still reaches a
    Wharf, on one of the databases, and two whole generated runs would not fit the suite's
    time on two cores."""
    k, n = _share()
    return slice(k - 1, None, n)
