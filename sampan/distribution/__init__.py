"""Registry client: references, auth, manifests, pull and push pipelines.

`DistributionService(images, db, tmp_dir, daemon_json_extra)`: `prepare_pull`/`run_pull`,
`pull_all_tags`, `prepare_push`/`run_push`, `login`, `search`, `inspect`. Credentials:
`auth.ConfigFile` (Docker's config.json) and `auth.decode_registry_auth` (X-Registry-Auth).
"""
