"""The ImagePruner's seam. The prune itself (what `oc adm prune images` does: keep the newest
`keepTagRevisions` of each tag and anything younger than `keepYoungerThanDuration`, delete the
rest) run on `schedule` is wharf.operator.prune_job.

It plugs in here: an object with `PruneJob`'s shape, given to `Operator(prune_job=...)`. The
operator then reports the pruner as Scheduled (unless suspended) and records the outcome of
each run, which `run_due` returns, in the ImagePruner's Failed condition. Without one, the
pruner's status says plainly that no prune runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..apiserver.meta import Object
from .s3 import Condition


@dataclass(frozen=True)
class PruneOutcome:
    succeeded: bool
    message: str
    finished: str  # RFC 3339


class PruneJob(Protocol):
    """Issue 12's prune, run by the operator when the ImagePruner's schedule says so."""

    def next_run(self, spec: Object) -> str | None:
        """When the next run is due (RFC 3339), None while suspended."""

    async def run_due(self, spec: Object) -> PruneOutcome | None:
        """Run the prune if it is due now; the outcome of the last run, None before any."""


def pruner_conditions(
    spec: Object, job: PruneJob | None, last: PruneOutcome | None
) -> list[Condition]:
    available = Condition("Available", True, "AsExpected", "The pruner configuration is valid")
    if spec.get("suspend"):
        scheduled = Condition("Scheduled", False, "Suspended", "The pruner job is suspended")
    elif job is None:
        scheduled = Condition(
            "Scheduled",
            False,
            "PruneNotAvailable",
            "No prune job is built into this Wharf yet: images are not pruned on a schedule",
        )
    else:
        due = job.next_run(spec) or "unknown"
        scheduled = Condition("Scheduled", True, "Scheduled", f"The next prune runs at {due}")
    if last is None:
        failed = Condition("Failed", False, "NotRun", "No prune has run yet")
    elif last.succeeded:
        failed = Condition(
            "Failed", False, "Complete", f"Pruner completed successfully: {last.message}"
        )
    else:
        failed = Condition("Failed", True, "JobFailed", f"Pruner failed: {last.message}")
    return [available, scheduled, failed]
