"""Linux system calls Python's `os` lacks (ctypes), capabilities and seccomp.

`syscalls`: mount, umount2, pivot_root, unshare, setns, sethostname, capget/capset, prctl.
`caps`: capability names and numbers, Docker's cap-add/drop rules. `seccomp`: BPF filters.
"""
