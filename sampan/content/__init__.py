"""Content-addressed blob store: the single source of truth for configs, manifests, layer tars.

`ContentStore` (in `local.py`) keeps blobs under `<content_dir>/sha256/<hex>`; every write goes
to a temp file in the data root's tmp/, is verified, fsynced and renamed into place.
"""

from .local import ContentStore, Writer, sha256_digest

__all__ = ["ContentStore", "Writer", "sha256_digest"]
