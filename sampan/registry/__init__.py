"""sampan's registry server (OCI distribution spec v1.1): `sampan registry serve` / `gc`.

`server.make_server(RegistryConfig(root=...))` -> (ThreadingHTTPServer, RegistryApp);
`storage.Storage(root)` the filesystem layout; `gc.collect(storage, ...)` mark and sweep.
"""
