"""The HTTP API (``smsdispatch api``): FastAPI over the library's Dispatcher, for producers in any language.

Modules: app (the factory), routes (endpoints), schemas (bodies), auth (keys, scopes, per-key rate limit),
keys (key text, pure; its rows are read by dispatcher.store.api_keys), keyring (create / list / revoke),
problems (RFC 9457 errors), limits (body size and type), server (running it under uvicorn).
"""
