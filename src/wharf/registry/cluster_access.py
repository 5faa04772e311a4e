"""Registry access decided by the cluster, as OpenShift's registry decides it: the caller's
token names a user, and the user's RBAC permissions on the project's image resources decide.

- pull: `get imagestreams/layers` in the project; push: `get` and `update` of it;
  delete: `delete images` at the cluster scope.
- Any token is accepted as a Basic password (the user name is ignored) or as a Bearer token;
  the literal token `anonymous` (what /openshift/token gives without credentials) is
  `system:anonymous`.
- Token checks go through the Authenticator, whose short cache is dropped at every local
  write to tokens or users: a revoked token stops working within a second.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence

from aiohttp import web

from ..auth.authenticator import Authenticator, basic_credentials, bearer_token
from ..auth.rbac import RbacAuthorizer
from ..auth.resources import NAMESPACES
from ..auth.user import ANONYMOUS, Attributes, UserInfo
from ..db.objects import Key, ObjectStore
from ..logs import USER_NAME
from .access import AccessDenied, Action
from .errors import RegistryError

GROUP = "image.openshift.io"
USER_KEY = "wharf.user"
ANONYMOUS_TOKEN = "anonymous"


def split_repository(name: str) -> tuple[str, str] | None:
    """(project, stream) of a repository name; None unless it has exactly two parts."""
    parts = name.split("/")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


# A host, an IPv4 address or a bracketed IPv6 address, with an optional port: nothing that
# could end the quoted realm or make it another URL.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _forwarded(request: web.Request, attribute: str) -> str:
    """The first value of an X-Forwarded-<attribute> header (proxies append theirs)."""
    return request.headers.get(f"X-Forwarded-{attribute}", "").split(",", 1)[0].strip()


def token_realm(request: web.Request) -> str:
    """Where clients get tokens: this request's scheme and host, as the proxies in front of
    the registry saw them (X-Forwarded-Proto, -Host, -Port), as OpenShift's registry says."""
    scheme = _forwarded(request, "Proto").lower()
    if scheme not in ("http", "https"):
        scheme = request.scheme
    host = _forwarded(request, "Host")
    port = _forwarded(request, "Port")
    if host and port.isdigit():
        host = f"{host.rsplit(':', 1)[0] if not host.endswith(']') else host}:{port}"
    if not _HOST.fullmatch(host):
        host = request.host
    if not _HOST.fullmatch(host):
        host = _local_address(request)
    return f"{scheme}://{host}/openshift/token"


def _local_address(request: web.Request) -> str:
    """The address the request came in on, for a Host header that is no host."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return "localhost"
    address, port = str(sockname[0]), int(sockname[1])
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def challenge(request: web.Request) -> RegistryError:
    """No credentials at all: point the client at the token endpoint."""
    return RegistryError(
        "UNAUTHORIZED",
        headers={"WWW-Authenticate": f'Bearer realm="{token_realm(request)}"'},
        detail=[],
    )


DENIED_HEADERS = {"WWW-Authenticate": 'Basic realm=openshift,error="access denied"'}


def access_denied(message: str = "access denied") -> RegistryError:
    return RegistryError("UNAUTHORIZED", message, headers=DENIED_HEADERS)


UNDECODABLE = RegistryError(
    "UNAUTHORIZED",
    "failed to decode credentials",
    headers={"WWW-Authenticate": 'Basic realm=openshift,error="failed to decode credentials"'},
)


def presented_token(request: web.Request) -> str | None:
    """The token a request carries (Bearer, or the password of Basic); None without one.
    Raises the registry's challenges for headers that carry no usable token."""
    header = request.headers.get("Authorization")
    if header is None:
        raise challenge(request)
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        token = value.strip()
        return None if token in ("", ANONYMOUS_TOKEN) else token
    if scheme.lower() == "basic":
        credentials = basic_credentials(header)
        if credentials is None or not credentials[1]:
            raise UNDECODABLE
        return None if credentials[1] == ANONYMOUS_TOKEN else credentials[1]
    raise challenge(request)


class ClusterAccess:
    def __init__(
        self,
        authenticator: Authenticator,
        rbac: RbacAuthorizer,
        metrics_secret: str | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.rbac = rbac
        self.metrics_secret = metrics_secret
        # Where projects are looked up, to say so when a refused push names none that exists.
        self.objects = objects

    async def user_for(self, token: str) -> UserInfo | None:
        return await self.authenticator.user_for_token(token)

    async def caller(self, request: web.Request) -> UserInfo:
        known = request.get(USER_KEY)
        if isinstance(known, UserInfo):
            return known
        token = presented_token(request)
        user = ANONYMOUS if token is None else await self.user_for(token)
        if user is None:
            raise access_denied()
        request[USER_KEY] = user
        request[USER_NAME] = user.name
        return user

    async def allowed(self, user: UserInfo, repository: str, action: Action) -> bool:
        if action is Action.DELETE:
            return await self.rbac.allowed(Attributes(user, "delete", GROUP, "images"))
        project, stream = split_repository(repository) or ("", "")
        verbs = ("get",) if action is Action.PULL else ("get", "update")
        for verb in verbs:
            attributes = Attributes(user, verb, GROUP, "imagestreams", "layers", project, stream)
            if not await self.rbac.allowed(attributes):
                return False
        return True

    async def authorize(
        self, request: web.Request, repository: str | None, actions: Sequence[Action]
    ) -> None:
        if repository is not None and split_repository(repository) is None:
            raise RegistryError(
                "NAME_INVALID",
                f"repository name {repository!r} invalid: it must be of the format "
                "<project>/<name>",
            )
        user = await self.caller(request)
        for action in actions:
            if repository is not None and not await self.allowed(user, repository, action):
                # A push needs what a pull does: a refused push is told as one.
                shown = Action.PUSH if Action.PUSH in actions else action
                raise await self._refusal(user, repository, shown)

    async def _refusal(self, user: UserInfo, repository: str, action: Action) -> RegistryError:
        """Who may not do what where, as a client shows it ("unauthorized: alice may not push
        to project demo"); a project that does not exist is named as such, to a caller who
        logged in (an anonymous caller learns nothing of which projects exist)."""
        anonymous = user.name == ANONYMOUS.name
        if action is Action.DELETE:
            message = f"{user.name} may not delete {repository}"
        else:
            project = (split_repository(repository) or ("", ""))[0]
            where = "push to" if action is Action.PUSH else "pull from"
            message = f"{user.name} may not {where} project {project}"
            if not anonymous and not await self._project_exists(project):
                message += ": the project does not exist"
        if anonymous:
            return access_denied(message)
        return AccessDenied("UNAUTHORIZED", message, headers=DENIED_HEADERS)

    async def _project_exists(self, project: str) -> bool:
        if self.objects is None:
            return True
        return await self.objects.get(Key(NAMESPACES, "", project)) is not None

    async def authorize_metrics(self, request: web.Request) -> None:
        """As OpenShift's registry: `get` on `registry/metrics` in image.openshift.io (the
        ClusterRole registry-monitoring grants it), asked at the cluster scope; or the metrics
        secret as the bearer token."""
        secret = self.metrics_secret
        if secret and hmac.compare_digest(bearer_token(request) or "", secret):
            return
        user = await self.caller(request)
        if not await self.rbac.allowed(Attributes(user, "get", GROUP, "registry", "metrics")):
            raise access_denied(f"{user.name} may not read the registry's metrics")

    async def authorize_prune(self, request: web.Request) -> None:
        """As OpenShift's registry: `delete` of `images` in image.openshift.io, cluster-wide."""
        user = await self.caller(request)
        if not await self.rbac.allowed(Attributes(user, "delete", GROUP, "images")):
            message = f"{user.name} may not delete blobs from the registry"
            if user.name == ANONYMOUS.name:
                raise access_denied(message)
            raise AccessDenied("UNAUTHORIZED", message, headers=DENIED_HEADERS)

    async def may_pull(self, request: web.Request, repository: str) -> bool:
        if split_repository(repository) is None:
            return False
        try:
            user = await self.caller(request)
        except RegistryError:
            return False
        return await self.allowed(user, repository, Action.PULL)
