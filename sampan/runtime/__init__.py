"""The runtime: makes a process into a container from an OCI runtime-spec `config.json`.

- `spec.build_spec(...)` / `spec.build_exec_process(...)`: Docker config -> OCI spec / process.
- `container.run_child(spec, rootfs_mount, stdio, err_fd)` / `container.exec_child(...)`:
  called in a forked child by the monitor; exec the container's process or report a JSON
  error on `err_fd`. Never return.
- `mounts.Mount`: a mount(2) described as data (the rootfs overlay the snapshotter returns).
- `oci.write_bundle` / `oci.runtime_argv`: hand the same spec to runc or crun.

Submodules are imported explicitly by callers, so importing this package costs nothing.
"""
