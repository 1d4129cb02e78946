# Included by the top Makefile: the pakfire package.
DESTDIR ?= build/root
PAK = build/$(shell python3 addon/package.py name)

.PHONY: install pak
# PY_BASE as given (a path or a command name: abspath would turn `python3` into ./python3); package.py
# resolves it and refuses to build with anything but IPFire's Python 3.10.
install: $(VENV)/.stamp
	$(PY) addon/package.py install "$(DESTDIR)" "$(PY_BASE)"

# Writes $(PAK) and, as IPFire does, build/meta-zonevpn beside it.
pak: $(VENV)/.stamp
	rm -rf build/root
	$(MAKE) install DESTDIR=build/root
	$(PY) addon/package.py pak build/root $(PAK)
