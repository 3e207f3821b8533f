"""The sandbox every piece of student code runs in.

Design: the grader and nbgrader run as trusted processes; only the notebook kernel (and the
integrity re-check) run student code, each inside bubblewrap:

- its own user, PID, IPC, UTS, cgroup and network namespaces (no network at all), as an
  unprivileged uid (one per worker, so process limits of different workers do not mix);
- a read-only view of the system, Python and the course package `course_utils`, and nothing
  else of the course: no solutions/, no gradebook, no other student's files;
- one writable folder, the job's `box` (its scratch working directory and the kernel's ipc
  sockets); /tmp is a private tmpfs;
- resource limits (prlimit): address space, processes, file size, open files, CPU time, no core
  files; the grader adds a wall-clock limit on the whole notebook and kills the process group.

The kernel talks to nbgrader over jupyter_client's `ipc` transport (unix sockets in `box`), so it
needs no network namespace shared with the grader.
"""
import dataclasses
import os
import shutil
import sys
import sysconfig

from jupyter_client.manager import AsyncKernelManager

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
INSTALL_HINT = ("bubblewrap is missing: install it with `sudo apt-get install bubblewrap` (Debian/Ubuntu) or "
                "`sudo dnf install bubblewrap` (Fedora), or pass --unsafe-no-sandbox to run student code "
                "with your own permissions (only for submissions you trust).")
COURSE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "course_utils")


@dataclasses.dataclass
class Limits:
    memory_bytes: int = 3 * 1024 ** 3
    processes: int = 64
    file_bytes: int = 64 * 1024 ** 2
    open_files: int = 512
    cpu_seconds: int = 600


def available():
    return os.path.exists(BWRAP) and os.access(BWRAP, os.X_OK)


def _readonly_roots():
    """Folders the sandbox sees read-only: the system, Python (base and venv) and course_utils."""
    roots = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
    roots += [sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"], COURSE_UTILS]
    seen, result = set(), []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.exists(root) and root not in seen:
            seen.add(root)
            result.append((real, root))
    return result


def command(argv, box, uid, limits, env=None):
    """The argv that runs `argv` inside the sandbox with `box` as its only writable folder (and cwd)."""
    env = dict(env or {})
    env.setdefault("HOME", box)
    env.setdefault("PATH", os.path.dirname(sys.executable) + ":/usr/bin:/bin")
    env.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("LANG", "C.UTF-8")
    as_root = os.geteuid() == 0
    # As root: bwrap mounts, then setpriv drops to the worker's own unprivileged uid, so the process
    # limit applies (root is exempt from it). As a normal user: a user namespace, and the limit
    # counts on top of the processes the user already has.
    processes = limits.processes if as_root else limits.processes + _process_count(os.getuid())
    limit = ["prlimit", f"--as={limits.memory_bytes}", f"--nproc={processes}", f"--fsize={limits.file_bytes}",
             f"--nofile={limits.open_files}", f"--cpu={limits.cpu_seconds}", "--core=0", "--"]
    namespaces = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"] \
        if as_root else ["--unshare-all"]
    bwrap = [BWRAP, *namespaces, "--die-with-parent", "--new-session", "--clearenv",
             "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    mounts = [path for _, path in _readonly_roots()] + [box]
    for parent in sorted({p for path in mounts for p in _ancestors(path)}, key=len):
        bwrap += ["--perms", "0755", "--dir", parent]  # bwrap would create them 0700
    for real, path in _readonly_roots():
        if os.path.islink(path) and path.count("/") == 1:  # merged /usr: /bin -> usr/bin
            bwrap += ["--symlink", os.readlink(path), path]
        else:
            bwrap += ["--ro-bind", real, path]
    bwrap += ["--bind", box, box, "--chdir", box]
    for key, value in env.items():
        bwrap += ["--setenv", key, value]
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"] \
        if as_root else []
    return limit + bwrap + ["--"] + drop + list(argv)


def _ancestors(path):
    """'/a/b/c' -> ['/a', '/a/b']."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _process_count(uid):
    return sum(1 for pid in os.listdir("/proc") if pid.isdigit() and _owner(pid) == uid)


def _owner(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def prepare_box(box, uid):
    """Create the sandbox's writable folder, owned by the sandbox user."""
    os.makedirs(box, exist_ok=True)
    os.chown(box, uid, uid)
    os.chmod(box, 0o700)


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside the sandbox and talks over ipc sockets in the box.

    Configured through environment variables set by the grader for the nbgrader process:
    AUTOGRADE_BOX (the job's writable folder), AUTOGRADE_UID, AUTOGRADE_LIMITS (memory,procs,file,nofile,cpu).
    """

    def __init__(self, **kwargs):
        box = os.environ["AUTOGRADE_BOX"]
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(box, "kernel"))
        kwargs.setdefault("connection_file", os.path.join(box, "kernel.json"))
        super().__init__(**kwargs)

    def format_kernel_cmd(self, extra_arguments=None):
        argv = super().format_kernel_cmd(extra_arguments)
        box, uid = os.environ["AUTOGRADE_BOX"], int(os.environ["AUTOGRADE_UID"])
        limits = Limits(*map(int, os.environ["AUTOGRADE_LIMITS"].split(",")))
        os.chown(self.connection_file, uid, uid)
        env = {"NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
        return command(argv, box, uid, limits, env)

    async def _async_pre_start_kernel(self, **kw):
        kw["cwd"] = os.environ["AUTOGRADE_BOX"]
        return await super()._async_pre_start_kernel(**kw)


class UnsafeKernelManager(AsyncKernelManager):
    """No sandbox (instructor's explicit --unsafe-no-sandbox): the kernel still starts in the job's box."""

    async def _async_pre_start_kernel(self, **kw):
        kw["cwd"] = os.environ["AUTOGRADE_BOX"]
        return await super()._async_pre_start_kernel(**kw)


def self_test(work, uid, limits):
    """Start Python with the course package inside the sandbox once; raise RuntimeError if that fails.

    Without it a broken sandbox (no user namespaces, a missing mount) would look like every student failing.
    """
    import subprocess
    box = os.path.join(work, "sandbox-self-test")
    prepare_box(box, uid)
    argv = command([sys.executable, "-c", "import course_utils.grading, os; print(os.getuid())"], box, uid, limits)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError("the sandbox does not work on this machine, so no submission was graded:\n"
                           + (result.stderr or result.stdout)[-2000:])
