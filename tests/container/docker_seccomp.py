"""Run a command as Docker's default seccomp profile would: no new namespaces.

``python docker_seccomp.py COMMAND ARGS...`` execs COMMAND under a filter (libseccomp, through pyseccomp) that
refuses what Docker's default profile refuses a container without CAP_SYS_ADMIN: ``clone`` with any
namespace flag, ``unshare``, ``setns``, ``mount``, ``umount2`` and ``pivot_root`` fail with EPERM, and
``clone3`` with ENOSYS (so that a caller falls back to ``clone``, as glibc does). This is how Gradescope,
PrairieLearn and Docker-based CI run an autograder; bubblewrap cannot start under it.
"""

import errno
import os
import sys

import pyseccomp as seccomp

NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


def main() -> None:
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for call in ("unshare", "setns", "mount", "umount2", "pivot_root"):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), call)
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
