"""An IPFire-shaped box to run IPFire's own scripts in: this machine's / seen through an overlay (every write
lands in a throwaway layer), chrooted, in a private mount namespace, inside a network namespace the caller
owns. IPFire's real files from ../shared/ipfire are laid at the paths they have on a box (its README says
where), runlevel links come from lfs/initscripts' own `ln -sf` lines, rt_tables from lfs/iproute2, and the
setuid helpers (addonctrl, firewallctrl, wireguardctrl) are compiled from IPFire's C sources.

The only stand-ins are for what cannot run here or is not in ../shared/ipfire, each named in STANDINS:
- `ip link add wgN type wireguard`: this kernel has no wireguard module, so a wrapper at /usr/bin/ip
  starts wireguard-go (the userspace implementation) for exactly that command and passes every other `ip`
  call to iproute2 unchanged;
- IPFire's firewall initscript calls helpers that are not in ../shared/ipfire (ipsec-policy,
  openvpn-n2n, wirelessctrl, captivectrl): empty scripts; rules.pl needs Perl libraries that are not there
  either (firewall-lib.pl, location, ipblocklist): a script that does what rules.pl does to the chains
  zonevpn meets (flushes IPFire's rule chains) and, as rules.pl's last step, runs firewall.local reload;
- backupctrl (not in ../shared/ipfire): runs IPFire's real backup.pl as backupctrl does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence

from scoped import Scoped

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "ipfire"))
# The PATH IPFire's setuid helpers give every command (setuid.c); initscripts inherit it.
IPFIRE_PATH = "/usr/local/bin:/usr/local/sbin:/sbin:/usr/sbin:/bin:/usr/bin"
WG_ENV = "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"
PY310 = os.path.realpath(os.path.join(REPO, ".venv", "bin", "python3"))  # the venv is made from a 3.10
REAL_IP = "/usr/lib/zvbox/ip"  # iproute2's binary, moved aside in the box for the wireguard stand-in

STANDINS = {
    # IPFire's rc functions set PATH=/bin:/usr/bin:/sbin:/usr/sbin, so this replaces /usr/bin/ip itself
    "usr/bin/ip": f"""#!/bin/bash
# stand-in: this kernel has no wireguard module; `ip link add NAME type wireguard` starts wireguard-go
if [ "$1 $2 $4 $5" = "link add type wireguard" ] && [ $# -eq 5 ]; then
	{WG_ENV}=1 exec wireguard-go "$3" >/dev/null 2>&1
fi
exec {REAL_IP} "$@"
""",
    "usr/lib/firewall/ipsec-policy": "#!/bin/sh\n# stand-in: not in ../shared/ipfire (no IPsec here)\nexit 0\n",
    "etc/rc.d/init.d/openvpn-n2n": "#!/bin/sh\n# stand-in: not in ../shared/ipfire (no OpenVPN here)\nexit 0\n",
    "usr/local/bin/wirelessctrl": "#!/bin/sh\n# stand-in: not in ../shared/ipfire\nexit 0\n",
    "usr/local/bin/captivectrl": "#!/bin/sh\n# stand-in: not in ../shared/ipfire\nexit 0\n",
    # header.pl and stock pages (wireguard.cgi, services.cgi) require these Perl libraries: empty packages
    "var/ipfire/graphs.pl": "# stand-in: not in ../shared/ipfire (header.pl requires it; no graphs here)\n"
                            "package Graphs;\n1;\n",
    "var/ipfire/location-functions.pl": "# stand-in: not in ../shared/ipfire (stock pages require it)\n"
                                        "package Location::Functions;\nsub lookup_country_code { return ''; }\n"
                                        "sub get_flag_icon { return ''; }\n1;\n",
    "etc/system-release": "IPFire 2.29 (x86_64) - core199\n",  # header.pl's closepage prints it
    # pakfire's configuration (generated on a box, not in ../shared/ipfire); services.cgi loads functions.pl
    "opt/pakfire/etc/pakfire.conf": "# stand-in: pakfire's paths as on a box; no mirror is ever contacted\n"
                                    "$Conf::version = '2.29';\n$Conf::mainserver = '';\n"
                                    "$Conf::cachedir = '/var/cache/pakfire';\n$Conf::dbdir = '/opt/pakfire/db';\n"
                                    "$Conf::coredir = '/opt/pakfire/db/core';\n$Conf::tmpdir = '/opt/pakfire/tmp';\n"
                                    "$Conf::logdir = '/var/log/pakfire';\n1;\n",
    "usr/local/bin/backupctrl": """#!/bin/sh
# stand-in for IPFire's setuid backupctrl (not in ../shared/ipfire): it runs IPFire's real backup.pl
exec /var/ipfire/backup/bin/backup.pl "$@"
""",
}
# rules.pl needs firewall-lib.pl, location-functions.pl and ipblocklist-functions.pl, which are not in
# ../shared/ipfire. What it does that zonevpn meets: rebuild its own chains, then `firewall.local reload`.
RULES_STANDIN = """#!/bin/sh
# stand-in for IPFire's /usr/lib/firewall/rules.pl (its Perl libraries are not in ../shared/ipfire):
# the chains it flushes and refills, then its last step, firewall.local reload
for chain in INPUTFW FORWARDFW OUTGOINGFW POLICYIN POLICYFWD POLICYOUT; do
	iptables --wait -F "$chain" 2>/dev/null
done
for chain in NAT_SOURCE NAT_DESTINATION; do iptables --wait -t nat -F "$chain" 2>/dev/null; done
/usr/sbin/firewall-policy
[ -f /etc/sysconfig/firewall.local ] && /etc/sysconfig/firewall.local reload
exit 0
"""


def unavailable() -> str:
    """Why a box cannot be built here ('' when it can)."""
    if not os.path.isdir(SHARED):
        return f"IPFire's files are not at {SHARED}"
    if os.geteuid() != 0:
        return "an IPFire box needs root (mount and network namespaces)"
    if not shutil.which("gcc"):
        return "gcc is missing (make test installs it): IPFire's setuid helpers are compiled from source"
    return ""


def _placements() -> Iterator[tuple[str, str, int]]:
    """(file in ../shared/ipfire, path on the box, mode), as the README of ../shared/ipfire maps them."""
    src = "src/initscripts"
    for name in os.listdir(os.path.join(SHARED, src, "system")):
        yield f"{src}/system/{name}", f"etc/rc.d/init.d/{name}", 0o754
    for name in os.listdir(os.path.join(SHARED, src, "sysconfig")):
        yield f"{src}/sysconfig/{name}", f"etc/sysconfig/{name}", 0o755 if name == "firewall.local" else 0o644
    for base, _dirs, files in os.walk(os.path.join(SHARED, src, "networking")):
        rel = os.path.relpath(base, os.path.join(SHARED, src, "networking"))
        for name in files:
            sub = os.path.normpath(os.path.join(rel, name))
            yield f"{src}/networking/{sub}", f"etc/rc.d/init.d/networking/{sub}", 0o755
    yield "src/pakfire/lib/functions.sh", "opt/pakfire/lib/functions.sh", 0o644
    yield "src/pakfire/lib/functions.pl", "opt/pakfire/lib/functions.pl", 0o644
    for name in os.listdir(os.path.join(SHARED, "config/cfgroot")):
        target = "var/ipfire/main/settings" if name == "main-settings" else f"var/ipfire/{name}"
        yield f"config/cfgroot/{name}", target, 0o644
    for name in os.listdir(os.path.join(SHARED, "config/menu")):
        yield f"config/menu/{name}", f"var/ipfire/menu.d/{name}", 0o644
    for lang in os.listdir(os.path.join(SHARED, "langs")):
        if os.path.isdir(os.path.join(SHARED, "langs", lang, "cgi-bin")):
            yield f"langs/{lang}/cgi-bin/{lang}.pl", f"var/ipfire/langs/{lang}.pl", 0o644
    for base, _dirs, files in os.walk(os.path.join(SHARED, "html")):
        rel = os.path.relpath(base, os.path.join(SHARED, "html"))
        for name in files:
            sub = os.path.normpath(os.path.join(rel, name))
            yield f"html/{sub}", f"srv/web/ipfire/{sub}", 0o755 if sub.startswith("cgi-bin/") else 0o644
    yield "config/firewall/rules.pl", "usr/lib/firewall/rules.pl.ipfire", 0o755
    yield "config/firewall/firewall-policy", "usr/sbin/firewall-policy", 0o755
    yield "config/backup/backup.pl", "var/ipfire/backup/bin/backup.pl", 0o755
    yield "config/unbound/unbound.conf", "etc/unbound/unbound.conf", 0o644
    yield "src/scripts/readhash", "usr/local/bin/readhash", 0o755
    yield "src/scripts/update-lang-cache", "usr/local/bin/update-lang-cache", 0o755


def runlevel_links() -> list[tuple[str, str]]:
    """(target, link) from lfs/initscripts' own `ln -sf TARGET /etc/rc.d/...` lines."""
    with open(os.path.join(SHARED, "lfs/initscripts"), encoding="utf-8") as handle:
        found = re.findall(r"^\s*ln -sf\s+(\S+)\s+/(etc/rc\.d/\S+)", handle.read(), re.M)
    return [(target, link) for target, link in found]


def rt_tables() -> str:
    """Debian's iproute2 defaults plus the lines lfs/iproute2 appends (200 static, 201 wg)."""
    with open(os.path.join(SHARED, "lfs/iproute2"), encoding="utf-8") as handle:
        extra = re.findall(r'echo "(\d+)\s+(\w+)" >> /etc/iproute2/rt_tables', handle.read())
    lines = ["255\tlocal", "254\tmain", "253\tdefault", "0\tunspec"] + [f"{n}\t{name}" for n, name in extra]
    return "\n".join(lines) + "\n"


class IPFireBox(Scoped):
    """`with IPFireBox(netns) as box:` ... `box.run("/etc/rc.d/init.d/wireguard", "reload")`.

    `box.root` is the box's / as seen from this machine (write IPFire's settings there); `box.run` runs a
    command inside it (chroot + the network namespace), with IPFire's PATH."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.base = ""
        self.root = ""

    # --- life cycle ----------------------------------------------------------------------------------
    def open(self) -> None:
        self.start()

    def start(self) -> None:
        self.base = tempfile.mkdtemp(prefix="zvbox-")
        _sh("mount", "-t", "tmpfs", "-o", "mode=0755", "zvbox", self.base)
        _sh("mount", "--make-private", self.base)
        for sub in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.base, sub))
        self.root = os.path.join(self.base, "root")
        # The overlay and its tmpfs /run and /tmp are mounted here, on a private mount, so that this side
        # writes the box's files through the overlay; /proc, /dev and /sys only inside the box's namespace.
        _sh("mount", "-t", "overlay", "zvbox", "-o",
            f"lowerdir=/,upperdir={self.base}/upper,workdir={self.base}/work", self.root)
        for sub in ("run", "tmp"):
            _sh("mount", "-t", "tmpfs", "-o", "mode=1777" if sub == "tmp" else "mode=0755", sub, self.path(sub))
        for tree in _hidden_trees():
            self._bind_read_only(tree)
        open(self.mntns, "w").close()
        _sh("unshare", f"--mount={self.mntns}", "--propagation", "private", "sh", "-ec",
            f"mount -t proc proc {self.root}/proc; mount --rbind /dev {self.root}/dev")
        # sysfs shows the network devices of the namespace that mounts it: the box's
        _sh("nsenter", f"--mount={self.mntns}", f"--net=/run/netns/{self.netns}", "mount", "-t", "sysfs",
            "sysfs", f"{self.root}/sys")
        self._lay_out()

    def _bind_read_only(self, tree: str) -> None:
        target = self.path(tree.lstrip("/"))
        os.makedirs(target, exist_ok=True)
        _sh("mount", "--bind", tree, target)
        _sh("mount", "-o", "remount,bind,ro", target)

    @property
    def mntns(self) -> str:
        return os.path.join(self.base, "mntns")

    def close(self) -> None:
        if not self.base:
            return
        self.kill_processes()
        if os.path.exists(self.mntns):
            subprocess.run(["umount", self.mntns], capture_output=True)
        subprocess.run(["umount", "-R", "-l", self.base], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = self.root = ""

    def processes(self, word: str = "") -> list[int]:
        """Processes running inside the box (their root is the box), whose command line holds `word`."""
        mine, found = os.path.realpath(self.root), []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/root") != mine:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if word.encode() in handle.read():
                        found.append(int(pid))
            except OSError:
                continue
        return found

    def wait_for_exit(self, word: str, seconds: float = 60) -> None:
        """Until no process in the box has `word` in its command line (e.g. a backgrounded service start)."""
        deadline = time.monotonic() + seconds
        while self.processes(word):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running in the box after {seconds} s: {word}")
            time.sleep(0.05)

    def kill_processes(self) -> None:
        """Everything still running with the box as its root (wireguard-go, services started in it)."""
        mine = os.path.realpath(self.root) if self.root else ""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if mine and os.readlink(f"/proc/{pid}/root") == mine:
                    os.kill(int(pid), 9)
            except OSError:
                continue

    # --- building ------------------------------------------------------------------------------------
    def _lay_out(self) -> None:
        for source, target, mode in _placements():
            self.copy(os.path.join(SHARED, source), target, mode)
        init_d = self.path("etc/init.d")  # IPFire: /etc/init.d is rc.d/init.d
        if os.path.isdir(init_d) and not os.path.islink(init_d):
            shutil.rmtree(init_d)
        elif os.path.lexists(init_d):
            os.remove(init_d)
        os.symlink("rc.d/init.d", init_d)
        for target, link in runlevel_links():
            os.makedirs(os.path.dirname(self.path(link)), exist_ok=True)
            if os.path.lexists(self.path(link)):
                os.remove(self.path(link))
            os.symlink(target, self.path(link))
        self.write("etc/iproute2/rt_tables", rt_tables())
        os.remove(self.path("usr/bin/sh"))  # IPFire's /bin/sh is bash; its `#!/bin/sh` scripts need it
        os.symlink("bash", self.path("usr/bin/sh"))
        if os.path.basename(PY310).startswith("python3.10"):  # IPFire's python3 is 3.10 (Debian's is newer)
            os.remove(self.path("usr/bin/python3"))
            os.symlink(PY310, self.path("usr/bin/python3"))
            os.chmod(self.path("root"), 0o755)  # pyenv's 3.10 lives under /root: the web user must reach it
        for name in ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                     "ip6tables-restore"):  # IPFire is built with --disable-nftables
            link = self.path(f"usr/sbin/{name}")
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(name.replace("tables", "tables-legacy", 1), link)
        os.makedirs(self.path(os.path.dirname(REAL_IP)), exist_ok=True)
        shutil.copy2("/usr/bin/ip", self.path(REAL_IP))
        with open(self.path("etc/group"), "a+", encoding="utf-8") as group:  # IPFire: nobody's group is nobody
            group.seek(0)
            if not any(line.startswith("nobody:") for line in group):
                group.write(f"nobody:x:{_nobody_gid()}:\n")
        for rel, text in STANDINS.items():
            self.write(rel, text, 0o755)
        self.write("usr/lib/firewall/rules.pl", RULES_STANDIN, 0o755)
        self.write("var/ipfire/pakfire/settings", "")  # a box's own (pakfire's page writes it)
        for rel in ("var/ipfire/backup/addons/includes", "var/ipfire/backup/addons/backup", "var/log",
                    "opt/pakfire/db/installed", "opt/pakfire/db/rootfiles", "opt/pakfire/db/meta",
                    "opt/pakfire/tmp", "var/cache/pakfire", "var/ipfire/addon-lang", "var/ipfire/red",
                    "var/ipfire/main", "run/wireguard", "var/lock"):
            os.makedirs(self.path(rel), exist_ok=True)
        self._compile_helpers()

    def _compile_helpers(self) -> None:
        progs = os.path.join(SHARED, "src/misc-progs")
        for name in ("addonctrl", "firewallctrl", "wireguardctrl"):
            out = self.path(f"usr/local/bin/{name}")
            _sh("gcc", "-O1", "-o", out, os.path.join(progs, f"{name}.c"), os.path.join(progs, "setuid.c"))
            os.chown(out, 0, _nobody_gid())
            os.chmod(out, 0o4750)  # IPFire installs its helpers setuid root, runnable by group nobody

    # --- files ---------------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def write(self, rel: str, text: str | bytes, mode: int = 0o644) -> str:
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path) and not os.path.isdir(path):
            os.remove(path)  # never write through a symlink in the lower layer
        with open(path, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
        os.chmod(path, mode)
        return path

    def read(self, rel: str) -> str:
        with open(self.path(rel), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def copy(self, source: str, rel: str, mode: int) -> None:
        with open(source, "rb") as handle:
            data = handle.read()
        if rel.startswith("var/ipfire/") and rel.endswith(".pl"):
            # IPFire's build installs these with its config root filled in (setuid.h: CONFIG_ROOT)
            data = data.replace(b"CONFIG_ROOT", b"/var/ipfire")
        self.write(rel, data, mode)

    # --- running -------------------------------------------------------------------------------------
    def command(self, *cmd: str, env: dict[str, str] | None = None) -> list[str]:
        """The argv that runs `cmd` inside the box (as root, IPFire's PATH, a clean environment)."""
        base = {"PATH": IPFIRE_PATH, "HOME": "/root", "LANG": "C", "TERM": "dumb"}
        base.update(env or {})
        return ["nsenter", f"--mount={self.mntns}", f"--net=/run/netns/{self.netns}", "chroot", self.root,
                "env", "-i", *(f"{k}={v}" for k, v in base.items()), *cmd]

    def run(self, *cmd: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*cmd, env=env), capture_output=True, text=True, input=input,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"in the box: {' '.join(cmd)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result

    def popen(self, cmd: Sequence[str], env: dict[str, str] | None = None,
              **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*cmd, env=env), text=True, **kwargs)  # type: ignore[call-overload]


def _nobody_gid() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_gid


def _sh(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")


def _hidden_trees() -> list[str]:
    """The trees the box runs from (this checkout with its venv, ../shared, the 3.10 prefix) that the
    overlay of / would not show: on another filesystem, or under the box's own tmpfs /tmp and /run (CI may
    clone anywhere). They are bound in read-only, at the same path."""
    root_dev = os.stat("/").st_dev
    trees = [REPO, os.path.dirname(SHARED), os.path.dirname(os.path.dirname(PY310))]
    return [tree for tree in dict.fromkeys(trees) if os.stat(tree).st_dev != root_dev
            or tree.startswith(("/tmp/", "/run/"))]
