"""Drive the registry's operator as a cluster administrator does: kubectl patch of
`configs.imageregistry.operator.openshift.io/cluster`, then kubectl wait until the operator has
observed the new generation (within the 10 s the issue allows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.cluster import Kubectl

CONFIG = "configs.imageregistry.operator.openshift.io"
PRUNER = "imagepruners.imageregistry.operator.openshift.io"
APPLY_SECONDS = 10


@dataclass
class RegistryAdmin:
    kubectl: Kubectl

    def config(self) -> dict[str, Any]:
        found = self.kubectl.json("get", CONFIG, "cluster")
        assert isinstance(found, dict)
        return found

    def patch(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Merge `spec` into the Config's spec and wait until the operator reports it applied;
        the Config then."""
        patched = json.loads(
            self.kubectl.run(
                "patch",
                CONFIG,
                "cluster",
                "--type=merge",
                "-p",
                json.dumps({"spec": spec}),
                "-o",
                "json",
            ).stdout
        )
        generation = patched["metadata"]["generation"]
        self.kubectl.run(
            "wait",
            f"--for=jsonpath={{.status.observedGeneration}}={generation}",
            f"{CONFIG}/cluster",
            f"--timeout={APPLY_SECONDS}s",
        )
        return self.config()

    def condition(self, kind: str, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        for found in ((obj or self.config()).get("status") or {}).get("conditions") or []:
            if found["type"] == kind:
                return dict(found)
        raise AssertionError(f"no {kind} condition")
