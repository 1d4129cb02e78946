#!/usr/bin/python3
"""IPFire web page for zonevpn (runs as the web server user). The only file zonevpn puts under cgi-bin (a
ScriptAlias: anything executable here is callable from a browser); the logic, and the Perl helper that prints
IPFire's frame, live in /usr/lib/zonevpn/zonevpn/web."""
import os
import sys

LIB = os.environ.get("ZONEVPN_LIB", "/usr/lib/zonevpn")
sys.path[:0] = [LIB, os.path.join(LIB, "vendor")]

from zonevpn.web.cgi import main  # noqa: E402

sys.exit(main())
