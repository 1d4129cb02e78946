"""IPFire's page frame around the page's body. frame.pl (beside this file, outside cgi-bin) has IPFire's
header.pl print the headers, menu and footer with a marker where the body goes; it takes no input. It is
started first, so that Perl loading header.pl overlaps Python reading the settings."""

from __future__ import annotations

import html
import os
import subprocess
import sys

FRAME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frame.pl")
MARKER = b"\n<!-- zonevpn body -->\n"
CSS = "/themes/ipfire/include/css/style.css"


class Frame:
    def __init__(self) -> None:
        try:
            self.perl: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["perl", FRAME], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError:
            self.perl = None

    def around(self, body: str, title: str) -> bytes:
        """The whole CGI answer: IPFire's headers and frame around `body`, or (no Perl, no header.pl) a plain
        page that still says what happened. Never a blank page or Apache's bare 500."""
        frame = self._frame()
        if frame is None:
            return self.plain(body, title)
        head, tail = frame
        return head + body.encode() + tail

    def _frame(self) -> tuple[bytes, bytes] | None:
        if self.perl is None:
            return None
        try:
            out, err = self.perl.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.perl.kill()
            self.perl.communicate()
            return None
        if self.perl.returncode != 0 or out.count(MARKER) != 1:
            sys.stderr.write(f"zonevpn: IPFire's frame failed ({self.perl.returncode}): {err.decode(errors='replace')}")
            return None
        head, tail = out.split(MARKER)
        return head + b"\n", b"\n" + tail

    @staticmethod
    def plain(body: str, title: str) -> bytes:
        page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f'<link href="{CSS}" rel="stylesheet" type="text/css"></head>\n<body><div id="main_inner">'
                f"<h1>{html.escape(title)}</h1>\n{body}\n</div></body></html>\n")
        return b"Content-Type: text/html; charset=UTF-8\nCache-Control: private\n\n" + page.encode()
