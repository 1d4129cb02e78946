# zonevpn — the two commands a fresh machine needs are `make demo` and `make test`;
# both install what they need first (Debian packages as root, a venv for Python packages).

PY_BASE   ?= $(shell ls $$HOME/.pyenv/versions/3.10*/bin/python3 2>/dev/null | head -n1 || true)
PY_BASE   := $(if $(PY_BASE),$(PY_BASE),python3)
VENV      ?= .venv
PY        := $(VENV)/bin/python
APT_PKGS  := iproute2 iptables wireguard-go wireguard-tools conntrack kmod procps python3-venv python3 perl \
             apache2 apache2-utils chromium xz-utils gcc libc6-dev openssl \
             libcgi-pm-perl libhtml-parser-perl libnetwork-ipv4addr-perl libimager-qrcode-perl \
             libwww-perl libswitch-perl
RUN       := PYTHONPATH=lib:tests SETUPTOOLS_USE_DISTUTILS=stdlib

.PHONY: setup test demo lint bench soak clean

setup: $(VENV)/.stamp .sysdeps.stamp

.sysdeps.stamp:
	@missing=""; for c in ip iptables-legacy wg wireguard-go conntrack apache2 htpasswd chromium perl python3 xz gcc openssl; do \
	  command -v $$c >/dev/null 2>&1 || missing=1; done; \
	perl -MCGI -MHTML::Entities -MNet::IPv4Addr -MImager::QRCode -MLWP::UserAgent -MSwitch -e1 2>/dev/null || missing=1; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(APT_PKGS) >/dev/null; fi
	@touch $@

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	$(PY_BASE) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

test: setup
	$(RUN) $(PY) -m pytest -q -p no:cacheprovider tests

demo: setup
	$(RUN) $(PY) -m lab.demo

lint: setup
	$(VENV)/bin/ruff check lib tests addon/package.py
	$(RUN) $(VENV)/bin/mypy lib/zonevpn

bench: setup
	$(RUN) $(PY) -m bench

clean:
	rm -rf $(VENV) .sysdeps.stamp build artifacts

-include addon/package.mk

soak: setup
	$(RUN) $(PY) -m soak 200
