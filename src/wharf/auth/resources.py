"""Object-store keys of the kinds that authentication and authorization read."""

USERS = "users.user.openshift.io"
GROUPS = "groups.user.openshift.io"
IDENTITIES = "identities.user.openshift.io"
OAUTH_ACCESS_TOKENS = "oauthaccesstokens.oauth.openshift.io"
SERVICE_ACCOUNTS = "serviceaccounts"
NAMESPACES = "namespaces"
# Service-account tokens are kept like OAuth tokens, by hash, in a resource the API never serves.
SERVICE_ACCOUNT_TOKENS = "serviceaccounttokens.wharf.internal"
