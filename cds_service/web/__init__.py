"""The HTTP edge: the Starlette app, its routes and typed state, JSON bodies, caller authentication, the
audit line, request ids, the OpenAPI description and the rule pages. Nothing below imports it."""
