"""Secrets out of what is printed: a URL's or a DSN's password, before an error or a log shows it."""

from __future__ import annotations

import re

__all__ = ["redact_secrets"]

# scheme://user:password@host: the password runs to the last "@" before the host (a raw
# "@" inside one left its tail shown), the user may be empty (postgresql://:pw@host)
_USERINFO = re.compile(r"(://[^/\s:@]*):[^\s/]*@")
# ?password=..., &sslpassword=..., and libpq's keyword form "host=db password=pw"
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&;\s])(?:password|passwd|pwd|sslpassword|secret|token|api[_-]?key|"
                           r"access[_-]?key|secret[_-]?access[_-]?key|session[_-]?token)=)('[^']*'|[^&\s;]+)")


def redact_secrets(text: str) -> str:
    """``text`` with the passwords and keys of the URLs and DSNs in it as ``***``."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
