"""The API application: the kinds it serves, its routes, and Status errors for every failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from aiohttp import hdrs, web

from ..auth.authenticator import Authenticator, InvalidCredentials
from ..auth.rbac import RbacAuthorizer
from ..auth.user import Attributes
from ..db.database import DatabaseUnavailable
from ..db.objects import ObjectStore
from ..images.spec_imports import SpecTagImports
from ..logs import request_id_of
from ..metrics import METRICS, exposition
from . import (
    core_kinds,
    discovery,
    image_kinds,
    import_kinds,
    oauth,
    project_kinds,
    quota_kinds,
    rbac_kinds,
    rest,
    user_kinds,
)
from .bodies import read_object
from .context import API, Api
from .coordination_kinds import LEASE
from .errors import UNAUTHORIZED, ApiError, status_object
from .kinds import KindRegistry
from .operator_kinds import OPERATOR_KINDS
from .resources import Call, Resource
from .review_kinds import reviews
from .route_kinds import ROUTE

log = structlog.get_logger("wharf.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_kinds(
    store: ObjectStore,
    authenticator: Authenticator,
    rbac: RbacAuthorizer,
    addresses: image_kinds.AddressSource,
) -> KindRegistry:
    kinds = KindRegistry()
    namespaces = core_kinds.NamespaceResource(core_kinds.NAMESPACE, store)
    kinds.add(core_kinds.NAMESPACE, namespaces)
    kinds.add(
        core_kinds.SERVICE_ACCOUNT,
        core_kinds.ServiceAccountResource(core_kinds.SERVICE_ACCOUNT, store, authenticator),
    )
    kinds.add(core_kinds.SECRET, Resource(core_kinds.SECRET, store))
    kinds.add(core_kinds.CONFIG_MAP, Resource(core_kinds.CONFIG_MAP, store))
    kinds.add(
        quota_kinds.RESOURCE_QUOTA,
        quota_kinds.ResourceQuotaResource(quota_kinds.RESOURCE_QUOTA, store),
    )
    kinds.add(quota_kinds.LIMIT_RANGE, Resource(quota_kinds.LIMIT_RANGE, store))
    for kind in (rbac_kinds.ROLE, rbac_kinds.CLUSTER_ROLE):
        kinds.add(kind, rbac_kinds.RoleResource(kind, store, rbac))
    for kind in (rbac_kinds.ROLE_BINDING, rbac_kinds.CLUSTER_ROLE_BINDING):
        kinds.add(kind, rbac_kinds.BindingResource(kind, store, rbac))
    kinds.add(
        project_kinds.PROJECT,
        project_kinds.ProjectResource(project_kinds.PROJECT, store, namespaces, rbac),
    )
    kinds.add(
        project_kinds.PROJECT_REQUEST,
        project_kinds.ProjectRequestResource(project_kinds.PROJECT_REQUEST, store, namespaces),
    )
    kinds.add(user_kinds.USER, user_kinds.UserResource(user_kinds.USER, store, authenticator))
    for kind in (user_kinds.GROUP, user_kinds.IDENTITY, user_kinds.OAUTH_ACCESS_TOKEN):
        kinds.add(kind, Resource(kind, store))
    kinds.add(
        user_kinds.USER_OAUTH_ACCESS_TOKEN,
        user_kinds.OwnTokenResource(user_kinds.USER_OAUTH_ACCESS_TOKEN, store),
    )
    for kind, resource in reviews(store, rbac, authenticator):
        kinds.add(kind, resource)
    kinds.add(ROUTE, Resource(ROUTE, store))
    kinds.add(LEASE, Resource(LEASE, store))
    _add_image_kinds(kinds, store, rbac, addresses)
    for kind in OPERATOR_KINDS:
        kinds.add(kind, Resource(kind, store))
    return kinds


def _add_image_kinds(
    kinds: KindRegistry,
    store: ObjectStore,
    rbac: RbacAuthorizer,
    addresses: image_kinds.AddressSource,
) -> None:
    images = Resource(image_kinds.IMAGE, store)

    async def own_hosts() -> set[str]:
        found = await addresses()
        return {host for host in (found.internal, found.public) if host}

    imports = SpecTagImports(store, own_hosts)
    kinds.closers.append(imports.close)
    streams = image_kinds.ImageStreamResource(image_kinds.IMAGE_STREAM, store, addresses, imports)
    kinds.add(image_kinds.IMAGE, images)
    kinds.add(image_kinds.IMAGE_STREAM, streams)
    kinds.add(
        image_kinds.IMAGE_STREAM_TAG,
        image_kinds.ImageStreamTagResource(image_kinds.IMAGE_STREAM_TAG, store, streams, rbac),
    )
    kinds.add(
        image_kinds.IMAGE_STREAM_MAPPING,
        image_kinds.ImageStreamMappingResource(image_kinds.IMAGE_STREAM_MAPPING, store, images),
    )
    kinds.add(
        import_kinds.IMAGE_STREAM_IMPORT,
        import_kinds.ImageStreamImportResource(
            import_kinds.IMAGE_STREAM_IMPORT, store, streams, rbac
        ),
    )


async def _close_kinds(kinds: KindRegistry, _app: web.Application) -> None:
    for close in kinds.closers:
        await close()


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except InvalidCredentials:
        return UNAUTHORIZED.response()
    except DatabaseUnavailable as exc:
        log.warning(f"database {exc.state}", method=request.method, reason=str(exc))
        wait = DatabaseUnavailable.RETRY_SECONDS
        response = ApiError(
            503,
            f"the database is {exc.state}, retry later",
            "ServiceUnavailable",
            {"retryAfterSeconds": wait},
        ).response()
        response.headers[hdrs.RETRY_AFTER] = str(wait)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            status_object("Failure", exc.status, exc.reason, exc.reason.replace(" ", "")),
            status=exc.status,
        )
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        request_id = request_id_of(request)
        return ApiError(
            500, f"an internal error occurred (request id {request_id})", "InternalError"
        ).response()


async def _resource_api(request: web.Request) -> web.StreamResponse:
    group = request.match_info.get("group", "")
    version = request.match_info["version"]
    if group == "" and version != "v1":
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return await rest.handle(request, group, version)


async def _resource_list(request: web.Request) -> web.Response:
    api = request.app[API]
    await api.authenticate(request)
    group = request.match_info.get("group", "")
    version = request.match_info.get("version", "v1")
    if version not in api.kinds.groups().get(group, []):
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return web.json_response(discovery.resource_list(api.kinds, group, version))


async def _group(request: web.Request) -> web.Response:
    api = request.app[API]
    await api.authenticate(request)
    group = request.match_info["group"]
    versions = api.kinds.groups().get(group)
    if not group or not versions:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return web.json_response(
        {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }
    )


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _metrics(request: web.Request) -> web.Response:
    """The API's metrics, for who may `get` the non-resource URL /metrics (system:monitoring)."""
    api = request.app[API]
    user = await api.authenticate(request)
    wanted = Attributes(user, "get", non_resource_path="/metrics")
    if not await api.authorizer.allowed(wanted):
        raise ApiError(
            403,
            f'forbidden: User "{user.name}" cannot get path "/metrics"',
            "Forbidden",
        )
    return exposition(request.app[METRICS])


async def _token_request(request: web.Request) -> web.Response:
    """POST serviceaccounts/<name>/token: a TokenRequest."""
    api = request.app[API]
    user = await api.authenticate(request)
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    await rest.authorize(
        request,
        user,
        Attributes(user, "create", "", "serviceaccounts", "token", namespace, name),
    )
    body = await read_object(request)
    found = api.kinds.find("", "v1", "serviceaccounts")
    assert found is not None
    resource = found[1]
    assert isinstance(resource, core_kinds.ServiceAccountResource)
    call = Call(user, namespace, dry_run=rest.dry_run(request))
    answer = await resource.request_token(call, name, body)
    return web.json_response(answer, status=201)


# Any rest of a path, newlines included (a plain `.*` stops at one, and the router answers 404
# before the caller is even authenticated).
ANY_TAIL = "{tail:(?s:.*)}"


def install(app: web.Application, api: Api, authenticator: Authenticator) -> None:
    app[API] = api
    app[rest.WATCHES] = rest.Watches()
    app.on_shutdown.append(rest.end_watches)
    app.on_cleanup.append(partial(_close_kinds, api.kinds))
    app.middlewares.append(status_errors)
    r = app.router
    # /readyz is the composition root's: it knows the parts to check (the database).
    for path in ("/healthz", "/livez"):
        r.add_get(path, _ok)
    r.add_get("/version", discovery.version)
    r.add_get("/metrics", _metrics)
    r.add_get("/api", discovery.api_versions)
    r.add_get("/api/", discovery.api_versions)
    r.add_get("/api/v1", _resource_list)
    r.add_post("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", _token_request)
    r.add_route("*", "/api/{version}/" + ANY_TAIL, _resource_api)
    r.add_get("/apis", discovery.api_groups)
    r.add_get("/apis/", discovery.api_groups)
    r.add_get("/apis/{group}", _group)
    r.add_get("/apis/{group}/{version}", _resource_list)
    r.add_route("*", "/apis/{group}/{version}/" + ANY_TAIL, _resource_api)
    r.add_get("/openapi/v2", discovery.openapi_v2)
    r.add_get("/openapi/v3", discovery.openapi_root)
    r.add_get("/openapi/v3/" + ANY_TAIL, discovery.openapi_group)
    oauth.install(app, authenticator)
