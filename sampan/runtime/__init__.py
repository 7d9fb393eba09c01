"""The runtime: makes a process into a container from an OCI runtime-spec `config.json`.

- `spec.build_spec(...)` / `spec.build_exec_process(...)`: Docker config -> OCI spec / process.
- `container.run_child(spec, rootfs_mount, stdio, err_fd, console_fd=None)` /
  `container.exec_child(..., console_fd=None)`: called in a forked child by the monitor; exec
  the container's process or report a JSON error on `err_fd`. Never return. With
  `console_fd` the terminal is a pty of the container's own devpts, its master sent back
  on that socket (`console.recv_master` receives it).
- `mounts.Mount`: a mount(2) described as data (the rootfs overlay the snapshotter returns).
- `oci.write_bundle` / `oci.runtime_argv`: hand the same spec to runc or crun.

Submodules are imported explicitly by callers, so importing this package costs nothing.
"""
