"""User namespaces: `--userns-remap` (root in a container is an unprivileged host uid).

- `idmap`: the map itself, `--userns-remap` values, /etc/subuid and /etc/subgid.
- `remap`: the daemon side (user creation, per-mapping data root, the active map).
- `spec`: what remapping changes in an OCI spec and refuses at create.
- `nsfork`: making the user namespace and the pid namespace it owns.
- `shift`: chowning layers into the mapping (and tars back out of it).
- `hooks`: the small calls the engine, monitor and layer store make.
"""

from .idmap import IdMap, IdRange, parse_remap
from .remap import active, configure, set_active

__all__ = ["IdMap", "IdRange", "active", "configure", "parse_remap", "set_active"]
