"""A real Apache (Debian's apache2, mod_cgi, basic auth) on 127.0.0.1 serving zonevpn's page from a sandbox
root laid out like IPFire, and a root broker standing in for IPFire's setuid addonctrl."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = "/usr/lib/apache2/modules"
USER, PASSWORD = "admin", "ipfire-test"


def unavailable() -> str:
    if os.geteuid() != 0:
        return "Apache as on IPFire needs root"
    if not shutil.which("apache2") or not shutil.which("htpasswd"):
        return "apache2/apache2-utils missing (make test installs them)"
    return ""


def lay_out(root: str) -> None:
    """The page's files where IPFire has them, IPFire's Perl frame replaced by our stand-ins."""
    for name in ("general-functions.pl", "lang.pl", "header.pl"):
        shutil.copy(os.path.join(HERE, "ipfire", name), os.path.join(root, "var/ipfire", name))
    os.makedirs(os.path.join(root, "var/ipfire/addon-lang"), exist_ok=True)
    for name in ("zonevpn.en.pl", "zonevpn.de.pl"):
        shutil.copy(os.path.join(REPO, "addon/lang", name), os.path.join(root, "var/ipfire/addon-lang", name))
    cgi = os.path.join(root, "srv/web/ipfire/cgi-bin")
    os.makedirs(cgi, exist_ok=True)
    shutil.copy(os.path.join(REPO, "cgi-bin/zonevpn.cgi"), cgi)
    shutil.copytree(os.path.join(REPO, "cgi-bin/zonevpn"), os.path.join(cgi, "zonevpn"), dirs_exist_ok=True)
    os.makedirs(os.path.join(root, "usr/local/bin"), exist_ok=True)
    shutil.copy(os.path.join(HERE, "ipfire", "addonctrl"), os.path.join(root, "usr/local/bin/addonctrl"))
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    os.makedirs(os.path.join(root, "srv/web/ipfire/html"), exist_ok=True)
    for base, _dirs, _files in os.walk(root):  # the web server user reads everything, writes only our settings
        os.chmod(base, 0o755)
    zonevpn_dir = os.path.join(root, "var/ipfire/zonevpn")
    os.makedirs(zonevpn_dir, exist_ok=True)
    shutil.chown(zonevpn_dir, "www-data", "www-data")
    for name in os.listdir(zonevpn_dir):
        shutil.chown(os.path.join(zonevpn_dir, name), "www-data", "www-data")


class Broker:
    """Root side of addonctrl: answers `reload`/`status`/... requests by calling `handle(action) -> rc`."""

    def __init__(self, root: str, handle: Callable[[str], int]) -> None:
        self.path = os.path.join(root, "run/addonctrl.sock")
        self.handle, self.calls = handle, []  # type: list[str]
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                action = conn.recv(64).decode()
                self.calls.append(action)
                conn.sendall(str(self.handle(action)).encode())

    def close(self) -> None:
        self.sock.close()


class Apache:
    def __init__(self, root: str) -> None:
        self.root = root
        self.tmp = tempfile.mkdtemp(prefix="zvweb-")
        os.chmod(self.tmp, 0o755)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/cgi-bin/zonevpn.cgi"

    def __enter__(self) -> Apache:
        subprocess.run(["htpasswd", "-bcB", f"{self.tmp}/htpasswd", USER, PASSWORD], check=True, capture_output=True)
        site = next(p for p in sys.path if p.endswith("site-packages"))
        modules = ["mpm_prefork", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "alias",
                   "cgi", "env"]
        config = "\n".join([f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in modules] + [
            f"Listen 127.0.0.1:{self.port}", "ServerName 127.0.0.1", f"PidFile {self.tmp}/httpd.pid",
            f"ErrorLog {self.tmp}/error.log", "User www-data", "Group www-data", f"Mutex file:{self.tmp}",
            f"DocumentRoot {self.root}/srv/web/ipfire/html", "<Directory />", "  AllowOverride None", "</Directory>",
            f"ScriptAlias /cgi-bin/ {self.root}/srv/web/ipfire/cgi-bin/",
            f"<Directory {self.root}/srv/web/ipfire/cgi-bin>", "  Options +ExecCGI", "  AuthType Basic",
            '  AuthName "IPFire - Restricted"', f"  AuthUserFile {self.tmp}/htpasswd", "  Require valid-user",
            "</Directory>", "LimitRequestBody 1048576",
            f"SetEnv ZONEVPN_ROOT {self.root}", f"SetEnv ZONEVPN_LIB {REPO}/lib", f"SetEnv PYTHONPATH {site}",
            "SetEnv PYTHONDONTWRITEBYTECODE 1", ""])
        with open(f"{self.tmp}/httpd.conf", "w") as handle:
            handle.write(config)
        self.proc = subprocess.Popen(["apache2", "-f", f"{self.tmp}/httpd.conf", "-DFOREGROUND"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)  # it signals its whole process group on stop
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"apache2 did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        raise RuntimeError("apache2 did not listen within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log = self.errors()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def errors(self) -> str:
        try:
            with open(f"{self.tmp}/error.log") as handle:
                return handle.read()
        except OSError:
            return ""
