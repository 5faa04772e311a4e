"""Who the caller is (users, tokens, identity provider) and what they may do (RBAC)."""
