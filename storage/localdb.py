"""The project's own local PostGIS cluster: create, start, stop, describe.

The cluster lives in ``<state_dir>/pg`` with its own socket folder and a free loopback port. PostgreSQL's
``initdb`` and ``pg_ctl`` refuse to run as root: as root the cluster belongs to the ``postgres`` system user
and lives in a folder that user can reach (a project under a 0700 home is not reachable, so the cluster
then moves to ``/var/lib/safezone/<hash>``).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

SERVICE_USER = "postgres"
DB_USER = "safezone"


class LocalDatabaseError(RuntimeError):
    """The local cluster cannot be created or started; the message says what to do."""


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries (``pg_config --bindir``, then ``/usr/lib/postgresql/*/bin``)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in versions]
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    msg = (
        "PostgreSQL server binaries not found (looked at `pg_config --bindir` and /usr/lib/postgresql/*/bin). "
        "Install them: apt-get install -y postgresql postgresql-postgis"
    )
    raise LocalDatabaseError(msg)


def postgis_available(bindir: Path) -> bool:
    """Whether the PostGIS extension is installed for this server version."""
    version = bindir.parent.name
    return any(Path(p).exists() for p in glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"))


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_as_owner(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    if _is_root():
        args = ["runuser", "-u", SERVICE_USER, "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


def _reachable_by_service_user(path: Path) -> bool:
    res = subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(path), "-a", "-w", str(path)],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


def free_port(start: int = 54320, end: int = 54999) -> int:
    """A free TCP port on 127.0.0.1."""
    for port in range(start, end):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    msg = f"no free loopback port between {start} and {end}"
    raise LocalDatabaseError(msg)


@dataclass
class LocalCluster:
    """A PostgreSQL cluster owned by the project.

    Parameters
    ----------
    state_dir
        The project's state folder (``.safezone``); the cluster is in ``state_dir/pg`` unless that is not
        reachable by the ``postgres`` user when running as root.
    db_name
        The application database created in the cluster.
    """

    state_dir: Path
    db_name: str = "safezone"

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

    # -- layout -----------------------------------------------------------------------------------
    @property
    def pointer(self) -> Path:
        """A file in the state folder naming the cluster folder (when it had to live elsewhere)."""
        return self.state_dir / "pg-location"

    @property
    def root(self) -> Path:
        if self.pointer.exists():
            return Path(self.pointer.read_text().strip())
        return self.state_dir / "pg"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "db-password"

    @property
    def port_file(self) -> Path:
        return self.state_dir / "db-port"

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self, db_name: str | None = None) -> str:
        """The SQLAlchemy URL of a database in this cluster (psycopg 3 driver)."""
        password = quote(self.secret_file.read_text().strip(), safe="")
        return f"postgresql+psycopg://{DB_USER}:{password}@127.0.0.1:{self.port}/{db_name or self.db_name}"

    # -- state --------------------------------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        bindir = find_bindir()
        res = _run_as_owner([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return res.returncode == 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def _choose_root(self) -> Path:
        root = self.state_dir / "pg"
        if not _is_root():
            return root
        root.mkdir(parents=True, exist_ok=True)
        pw = pwd.getpwnam(SERVICE_USER)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        if _reachable_by_service_user(root):
            return root
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
        alt = Path("/var/lib/safezone") / digest
        log.info("%s is not reachable by the postgres user; the cluster lives in %s", root, alt)
        shutil.rmtree(root, ignore_errors=True)
        return alt

    def init(self) -> None:
        """Create the cluster (``initdb``) if it does not exist yet."""
        if self.initialised():
            return
        bindir = find_bindir()
        if not postgis_available(bindir):
            msg = (
                f"PostGIS is not installed for PostgreSQL {bindir.parent.name}: "
                f"apt-get install -y postgresql-{bindir.parent.name}-postgis-3"
            )
            raise LocalDatabaseError(msg)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        root = self._choose_root()
        if root != self.state_dir / "pg":
            self._remove_orphan(root, bindir)
            self.pointer.write_text(str(root))
        for folder in (root, self.data_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        if not self.secret_file.exists():
            self.secret_file.write_text(secrets.token_urlsafe(24))
            os.chmod(self.secret_file, 0o600)
        pwfile = root / "initdb-pw"
        pwfile.write_text(self.secret_file.read_text().strip())
        if _is_root():
            pw = pwd.getpwnam(SERVICE_USER)
            for path in (root, self.data_dir, self.socket_dir, pwfile):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        res = _run_as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            msg = f"initdb failed:\n{res.stdout}\n{res.stderr}"
            raise LocalDatabaseError(msg)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# safezone local cluster\nlisten_addresses = '127.0.0.1'\n"
                "shared_buffers = 512MB\nwork_mem = 64MB\nmaintenance_work_mem = 512MB\n"
                "max_connections = 200\nfsync = on\nsynchronous_commit = on\n"
                "jit = off\nrandom_page_cost = 1.1\n"
            )

    @staticmethod
    def _remove_orphan(root: Path, bindir: Path) -> None:
        """Remove a cluster that an earlier clone at this path left outside it (``/var/lib/safezone/<hash>``).

        This clone has no pointer to it, so its password went with that clone and it cannot be used: it is
        stopped if it still runs, and removed, so that ``initdb`` starts from an empty folder.
        """
        if not (root / "data").exists():
            return
        log.warning("removing the cluster an earlier clone at this path left in %s (its password went with it)", root)
        if (root / "data" / "postmaster.pid").exists():
            _run_as_owner([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root)

    def start(self, *, timeout_s: float = 60) -> None:
        """Start the cluster on a free loopback port (keeps its port when that is still free)."""
        self.init()
        if self.running():
            return
        port = self.port
        if port is None or not _port_free(port):
            port = free_port()
            self.port_file.write_text(str(port))
        bindir = find_bindir()
        self.log_file.touch()
        if _is_root():
            pw = pwd.getpwnam(SERVICE_USER)
            os.chown(self.log_file, pw.pw_uid, pw.pw_gid)
        res = _run_as_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout_s)),
                "-o",
                f"-p {port} -k {self.socket_dir}",
                "start",
            ]
        )
        if res.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            msg = f"the local PostgreSQL did not start:\n{res.stdout}{res.stderr}\n{tail}"
            raise LocalDatabaseError(msg)
        self._wait_ready(port, timeout_s)

    def _wait_ready(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        msg = f"PostgreSQL did not accept connections on 127.0.0.1:{port} within {timeout_s} s"
        raise LocalDatabaseError(msg)

    def stop(self) -> bool:
        """Stop the cluster; returns whether it was running."""
        if not self.running():
            return False
        bindir = find_bindir()
        res = _run_as_owner([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])
        if res.returncode != 0:
            msg = f"pg_ctl stop failed: {res.stdout}{res.stderr}"
            raise LocalDatabaseError(msg)
        return True

    def destroy(self) -> None:
        """Stop and delete the cluster (tests' private clusters)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        self.pointer.unlink(missing_ok=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as PostgreSQL binds: connections of the previous run in TIME_WAIT do not make the port taken
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
