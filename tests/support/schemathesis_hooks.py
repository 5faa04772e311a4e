"""Schemathesis hooks for the generative runs of tests/test_api_generative.py (loaded through
SCHEMATHESIS_HOOKS): what the served OpenAPI documents cannot say, the run is told here, by
environment variables the test sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st

# A project the caller may work in: half the cases go there, so they reach the handlers
# instead of stopping at a namespace that does not exist.
NAMESPACE = os.environ.get("WHARF_SCHEMATHESIS_NAMESPACE", "")
# Paths that hold the caller's own credentials (its User, its token, its binding): a write to
# one would end the run's authority, and every later case would test only a 401. A write that
# names one is sent to a neighbour of that name instead.
LIFELINES = frozenset(json.loads(os.environ.get("WHARF_SCHEMATHESIS_LIFELINES", "[]")))
# Where every request sent is recorded, for the test's check of what the run may have removed.
REQUESTS_LOG = os.environ.get("WHARF_SCHEMATHESIS_REQUESTS", "")


@schemathesis.hook
def before_call(_context: Any, case: Any, _kwargs: dict[str, Any]) -> None:
    # A watch is a stream that lasts until its timeout, not one JSON answer: the list is tested
    # here, watches by their own tests (test_api_conventions, test_image_watch). Every phase's
    # cases pass here, the coverage phase's too.
    if case.query and str(case.query.get("watch", "")).lower() in ("1", "true"):
        case.query["watch"] = "false"
    if case.method.upper() in ("PUT", "PATCH", "DELETE") and case.formatted_path in LIFELINES:
        case.path_parameters["name"] = f"{case.path_parameters['name']}-not-mine"


@schemathesis.hook
def after_call(_context: Any, case: Any, response: Any) -> None:
    if REQUESTS_LOG:
        line = {"method": case.method.upper(), "path": case.formatted_path}
        with Path(REQUESTS_LOG).open("a") as log:
            log.write(json.dumps({**line, "status": response.status_code}) + "\n")


@schemathesis.hook
def flatmap_path_parameters(
    _context: Any, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    if not NAMESPACE or not path_parameters or "namespace" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, "namespace": NAMESPACE}])


@schemathesis.check
def errors_are_status(_context: Any, response: Any, _case: Any) -> bool | None:
    """Every error answer is a Kubernetes Status naming its own code."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict), "an error answer is not a JSON object"
    assert body.get("kind") == "Status", f"an error answer is not a Status: {body!r:.200}"
    assert body.get("status") == "Failure", f"a Status whose status is not Failure: {body!r:.200}"
    assert body.get("code") == response.status_code, f"code {body.get('code')} in the body"
    return True
