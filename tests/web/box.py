"""IPFire's real web stack for zonevpn's page, inside an IPFireBox (tests/ipfire_box.py): Debian's apache2
running in the box with IPFire's own vhost file (config/httpd/vhosts.d/ipfire-interface-ssl.conf, included
unchanged), IPFire's real header.pl, lang.pl, general-functions.pl, menus, CSS, language files and
wireguard.cgi, and the real setuid addonctrl (compiled from IPFire's C source) running the project's initscript
as root. Requests and the browser come from inside the box's network namespace; nothing listens outside it.

Stand-ins, for what is not in ../shared/ipfire: those of ipfire_box.STANDINS (graphs.pl,
location-functions.pl, /etc/system-release among them), an empty
/var/ipfire/ppp/settings (a box's setup writes it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from ipfire_box import REPO, SHARED, IPFireBox
from ipfire_files import make_root
from scoped import Scoped

USER, PASSWORD = "admin", "ipfire-test"
HOST = "ipfire.localdomain"
PORT = 444
URL = f"https://127.0.0.1:{PORT}/cgi-bin/zonevpn.cgi"
SITE = next(p for p in sys.path if p.endswith("site-packages"))

# Debian's apache2 in place of IPFire's: IPFire's main httpd.conf is not in ../shared/ipfire, so this file is
# ours. IPFire's vhost is included as it is; how this main file differs from a box, and why:
HTTPD_CONF = """# zonevpn test: Debian's apache2 with IPFire's vhost (see tests/web/box.py)
# Debian builds these as modules under /usr/lib/apache2/modules (IPFire's httpd has its own paths)
{modules}
# IPFire listens on 444 everywhere; here only on the loopback of the box's own network namespace
Listen 127.0.0.1:444
ServerName ipfire.localdomain
# the web server user, as on IPFire; Debian's nobody has the group nogroup (IPFire's: nobody)
User nobody
Group nogroup
PidFile /run/httpd.pid
ErrorLog /var/log/httpd/error_log
TypesConfig /etc/mime.types
Mutex file:/run
SSLSessionCache shmcb:/run/ssl_scache(512000)
# test only: the page gives up waiting for addonctrl after 8 s instead of 40 s (the slow-helper test)
SetEnv ZONEVPN_WEB_TIMEOUT 8
Include /etc/httpd/conf/vhosts.d/ipfire-interface-ssl.conf
"""
MODULES = ("mpm_prefork", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "alias", "cgi",
           "env", "rewrite", "headers", "ssl", "socache_shmcb", "mime")
STANDINS = {  # header.pl's and wireguard.cgi's missing libraries are in ipfire_box.STANDINS
    "var/ipfire/ppp/settings": "",  # a box's own, written by its setup (network-functions.pl reads it)
}


def unavailable() -> str:
    if os.geteuid() != 0:
        return "IPFire's web stack in a box needs root"
    if not os.path.isdir(SHARED):
        return f"IPFire's files are not at {SHARED}"
    for tool in ("apache2", "htpasswd", "openssl", "gcc", "perl"):
        if not shutil.which(tool):
            return f"{tool} is missing (make test installs it)"
    for module in ("CGI", "HTML::Entities", "Net::IPv4Addr", "Imager::QRCode"):
        if subprocess.run(["perl", f"-M{module}", "-e1"], capture_output=True).returncode != 0:
            return f"perl module {module} is missing (libcgi-pm-perl, libhtml-parser-perl, " \
                   "libnetwork-ipv4addr-perl, libimager-qrcode-perl)"
    return ""


class WebBox(Scoped):
    """`with WebBox(settings=..., peers=...) as web:` IPFire's web stack serving zonevpn's page."""

    def __init__(self, settings: str = "ENABLED=on\n", peers: str = "", language: str = "en") -> None:
        self.netns = f"zvweb{os.getpid()}"
        self.settings, self.peers, self.language = settings, peers, language
        self.box = IPFireBox(self.netns)
        self.apache: subprocess.Popen[str] | None = None

    def open(self) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self.box.start()
        self.lay_out()
        self.start_apache()

    def quiesce(self) -> None:
        """No zonevpn process left in the box: a watcher that a save started runs its own apply ("watcher
        started") a moment later, and that apply would start another watcher."""
        deadline = time.monotonic() + 10
        while self.box.processes("zonevpn") and time.monotonic() < deadline:
            for pid in self.box.processes("zonevpn"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self.box.wait_for_exit("zonevpn", seconds=1)

    def close(self) -> None:
        self.box.close()  # ends apache and everything else running in the box
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)

    @property
    def root(self) -> str:
        return self.box.root

    # --- laying out ---------------------------------------------------------------------------------
    def lay_out(self) -> None:
        box = self.box
        make_root(box.root, settings=self.settings, peers=self.peers)
        box.write("var/ipfire/main/settings", f"THEME=ipfire\nLANGUAGE={self.language}\nHOSTNAME=ipfire\n"
                  "DOMAINNAME=localdomain\nSPEED=off\n")
        for rel, text in STANDINS.items():
            box.write(rel, text)
        self._install_zonevpn()
        self._httpd()

    def _install_zonevpn(self) -> None:
        """Where the package puts each file; the lib as the package lays it (with its vendored packages)."""
        box = self.box
        box.copy(os.path.join(REPO, "cgi-bin/zonevpn.cgi"), "srv/web/ipfire/cgi-bin/zonevpn.cgi", 0o755)
        lib = box.path("usr/lib/zonevpn")
        shutil.copytree(os.path.join(REPO, "lib/zonevpn"), os.path.join(lib, "zonevpn"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("jinja2", "markupsafe", "pyroute2"):  # as the package vendors them (conntrack uses pyroute2)
            shutil.copytree(os.path.join(SITE, name), os.path.join(lib, "vendor", name),
                            ignore=shutil.ignore_patterns("__pycache__"))
        box.copy(os.path.join(REPO, "addon/zonevpn.launcher"), "usr/sbin/zonevpn", 0o755)
        box.copy(os.path.join(REPO, "initscripts/zonevpn"), "etc/rc.d/init.d/zonevpn", 0o754)
        box.copy(os.path.join(REPO, "addon/menu/EX-zonevpn.menu"), "var/ipfire/menu.d/EX-zonevpn.menu", 0o644)
        for lang in ("en", "de"):
            box.copy(os.path.join(REPO, f"addon/lang/zonevpn.{lang}.pl"), f"var/ipfire/addon-lang/zonevpn.{lang}.pl",
                     0o004)  # as IPFire's lang.pl BuildCacheLang leaves them
        box.write("opt/pakfire/db/installed/meta-zonevpn", "Name: zonevpn\nSummary: zone exits\nProgVersion: 0.1.0\n"
                  "Release: 1\nSize: 1\nDependencies:\nFile: zonevpn-0.1.0-1.ipfire\nServices: zonevpn\n")
        box.run("python3", "-m", "compileall", "-q", "/usr/lib/zonevpn")  # as the package does
        for rel in ("var/ipfire/zonevpn", "var/ipfire/zonevpn/settings", "var/ipfire/wireguard",
                    "var/ipfire/wireguard/settings", "var/ipfire/wireguard/peers"):
            os.chown(box.path(rel), *_nobody())  # the web server user's, as on IPFire

    def _httpd(self) -> None:
        box = self.box
        modules = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in MODULES)
        box.write("etc/httpd/conf/httpd.conf", HTTPD_CONF.format(modules=modules))
        box.copy(os.path.join(SHARED, "config/httpd/vhosts.d/ipfire-interface-ssl.conf"),
                 "etc/httpd/conf/vhosts.d/ipfire-interface-ssl.conf", 0o644)
        os.makedirs(box.path("var/log/httpd"), exist_ok=True)
        key, crt = box.path("etc/httpd/server-ecdsa.key"), box.path("etc/httpd/server-ecdsa.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", f"/CN={HOST}", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        users = subprocess.run(["htpasswd", "-nbB", USER, PASSWORD], check=True, capture_output=True, text=True)
        box.write("var/ipfire/auth/users", users.stdout.strip() + "\n")

    # --- running ------------------------------------------------------------------------------------
    def start_apache(self) -> None:
        self.apache = self.box.popen(["apache2", "-f", "/etc/httpd/conf/httpd.conf", "-DFOREGROUND"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = self.box.run("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}", check=False)
            if probe.returncode == 0:
                return
            if self.apache.poll() is not None:
                raise RuntimeError(f"apache2 did not start: {self.apache.stderr.read() if self.apache.stderr else ''}"
                                   f"{self.errors()}")
            time.sleep(0.1)
        raise RuntimeError("apache2 did not listen within 15 s")

    def errors(self) -> str:
        try:
            return self.box.read("var/log/httpd/error_log")
        except OSError:
            return ""

    def settings_bytes(self) -> bytes | None:
        try:
            with open(self.box.path("var/ipfire/zonevpn/settings"), "rb") as handle:
                return handle.read()
        except OSError:
            return None


def _nobody() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid
