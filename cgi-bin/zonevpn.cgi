#!/usr/bin/python3
"""IPFire web page for zonevpn (runs as the web server user). The logic lives in zonevpn.web."""
import os
import sys

LIB = os.environ.get("ZONEVPN_LIB", "/usr/lib/zonevpn")
sys.path[:0] = [LIB, os.path.join(LIB, "vendor")]

from zonevpn.web.cgi import main  # noqa: E402

sys.exit(main())
