# Included by the top Makefile: the pakfire package.
DESTDIR ?= build/root
PAK = build/$(shell python3 addon/package.py name)

.PHONY: install pak
install: $(VENV)/.stamp
	$(PY) addon/package.py install "$(DESTDIR)" "$(abspath $(PY_BASE))"

pak: $(VENV)/.stamp
	rm -rf build/root
	$(MAKE) install DESTDIR=build/root
	$(PY) addon/package.py pak build/root $(PAK)
