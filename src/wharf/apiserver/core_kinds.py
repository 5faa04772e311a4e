"""core/v1: Namespace, ServiceAccount, Secret, ConfigMap."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ..auth.authenticator import Authenticator
from ..db.objects import ObjectStore, Transaction
from ..images.history import forget
from .errors import ApiError, bad_request, invalid
from .kinds import ALL_VERBS, Column, Kind, Strategy
from .meta import Object, label_name_problem
from .resources import Call, Resource
from .shapes import ANY, MAP, S, top


class NamespaceStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return label_name_problem(name)

    def prepare_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])

    def prepare_update(self, new: Object, old: Object) -> None:
        new["status"] = old.get("status", {"phase": "Active"})

    def columns(self) -> list[Column]:
        return [Column("Status", "string", lambda o: o.get("status", {}).get("phase", ""))]


# The namespaces a cluster needs: Kubernetes refuses to delete them, whoever asks.
UNDELETABLE_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "openshift"})


class NamespaceResource(Resource):
    """Deleting a namespace deletes everything in it, in the same transaction."""

    async def delete_in(self, tx: Transaction, key: Any, version: int | None = None) -> Object:
        if key.name in UNDELETABLE_NAMESPACES:
            raise ApiError(
                403,
                f'namespaces "{key.name}" is forbidden: this namespace may not be deleted',
                "Forbidden",
                {"name": key.name, "kind": "namespaces"},
            )
        deleted = await super().delete_in(tx, key, version)
        await tx.delete_namespace_contents(key.name)
        # The registry's records of its image streams too: a namespace made again starts empty.
        await tx.conn.run_sync(forget, key.name)
        return deleted


class SecretStrategy(Strategy):
    def prepare_create(self, obj: Object) -> None:
        obj.setdefault("type", "Opaque")
        self._fold_string_data(obj)

    def prepare_update(self, new: Object, old: Object) -> None:
        new.setdefault("type", old.get("type", "Opaque"))
        self._fold_string_data(new)

    @staticmethod
    def _fold_string_data(obj: Object) -> None:
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        problems = []
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                problems.append((f"data[{key}]", "must be base64 encoded"))
        return problems

    def columns(self) -> list[Column]:
        return [
            Column("Type", "string", lambda o: o.get("type", "")),
            Column("Data", "integer", lambda o: len(o.get("data") or {})),
        ]


# What Kubernetes allows as a key of a ConfigMap (a file name once mounted), and its size.
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIG_MAP_MAX_BYTES = 1024 * 1024


class ConfigMapStrategy(Strategy):
    def prepare_update(self, new: Object, old: Object) -> None:
        # An immutable ConfigMap keeps its contents and stays immutable; only metadata changes.
        if not old.get("immutable"):
            return
        name = old["metadata"].get("name", "")
        problems = [
            (field, "Forbidden: field is immutable when `immutable` is set")
            for field in ("data", "binaryData")
            if (new.get(field) or {}) != (old.get(field) or {})
        ]
        if not new.get("immutable"):
            problems.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
        if problems:
            raise invalid("ConfigMap", "", name, problems)

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
        keys = [(f"data[{key}]", key) for key in data] + [(f"binaryData[{k}]", k) for k in binary]
        problems = [
            (field, problem) for field, key in keys if (problem := _config_key_problem(key))
        ]
        size = sum(len(key) + len(str(value).encode()) for key, value in data.items())
        for key, value in binary.items():
            if key in data:
                problems.append((f"binaryData[{key}]", "Invalid value: duplicate of key in data"))
            try:
                size += len(key) + len(base64.b64decode(value, validate=True))
            except (binascii.Error, TypeError, ValueError):
                problems.append((f"binaryData[{key}]", "must be base64 encoded"))
        if size > CONFIG_MAP_MAX_BYTES:
            problems.append(("", f"Too long: must have at most {CONFIG_MAP_MAX_BYTES} bytes"))
        return problems

    def columns(self) -> list[Column]:
        def count(obj: Object) -> int:
            return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})

        return [Column("Data", "integer", count)]


def _config_key_problem(key: str) -> str | None:
    if len(key) > 253:
        return "Too long: must be no more than 253 characters"
    if not _CONFIG_KEY.fullmatch(key) or key in (".", "..") or key.startswith(".."):
        return (
            "Invalid value: a valid config key must consist of alphanumeric characters, "
            "'-', '_' or '.', and must not be '.', '..' or start with '..'"
        )
    return None


class ServiceAccountResource(Resource):
    """Service accounts, with the TokenRequest subresource."""

    def __init__(self, kind: Kind, store: ObjectStore, authenticator: Authenticator) -> None:
        super().__init__(kind, store)
        self.authenticator = authenticator

    async def request_token(self, call: Call, name: str, request: Object) -> Object:
        spec = request.get("spec") or {}
        if not isinstance(spec, dict):
            raise bad_request("spec must be an object")
        audiences = spec.get("audiences") or []
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise bad_request("spec.audiences must be a list of strings")
        seconds = spec.get("expirationSeconds", 3600)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 600 <= seconds <= 2**32:
            raise bad_request("spec.expirationSeconds must be an integer of at least 600")
        account = await self.get(call, name)
        answer: Object = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": call.namespace},
            "spec": {"audiences": spec.get("audiences") or [], "expirationSeconds": seconds},
            "status": {},
        }
        if not call.dry_run:  # a dry run issues no token
            token, expires = await self.authenticator.issue_service_account_token(
                call.namespace, account, seconds
            )
            answer["status"] = {"token": token, "expirationTimestamp": expires}
        return answer


NAMESPACE = Kind(
    "",
    "v1",
    "Namespace",
    "namespaces",
    namespaced=False,
    # As Kubernetes: no deletecollection, a namespace goes only when named.
    verbs=tuple(verb for verb in ALL_VERBS if verb != "deletecollection"),
    delete_answers_object=True,
    short_names=("ns",),
    strategy=NamespaceStrategy(),
    subresources=("status",),
    shape=top(spec={"finalizers": [S]}, status={"phase": S, "conditions": [ANY]}),
)
SERVICE_ACCOUNT = Kind(
    "",
    "v1",
    "ServiceAccount",
    "serviceaccounts",
    namespaced=True,
    short_names=("sa",),
    subresources=("token",),
    shape=top(secrets=[ANY], imagePullSecrets=[ANY], automountServiceAccountToken="boolean"),
)
SECRET = Kind(
    "",
    "v1",
    "Secret",
    "secrets",
    namespaced=True,
    strategy=SecretStrategy(),
    shape=top(type=S, data=MAP, stringData=MAP, immutable="boolean"),
)
CONFIG_MAP = Kind(
    "",
    "v1",
    "ConfigMap",
    "configmaps",
    namespaced=True,
    short_names=("cm",),
    strategy=ConfigMapStrategy(),
    shape=top(data=MAP, binaryData=MAP, immutable="boolean"),
)
