"""The account's URL / call-back number whitelist, from settings and an optional file re-read on change."""

from __future__ import annotations

import logging
import os
import time

from .errors import ConfigurationError
from .links import LinkRules, parse_whitelist
from .settings import Settings

log = logging.getLogger(__name__)


class WhitelistSource:
    """``get()`` returns the current LinkRules; the file (``DLT_WHITELIST_FILE``) is looked at at most every
    CHECK_EVERY_S seconds and re-read when its modification time or size changed, so editing it takes
    effect in every process within seconds, without a restart."""

    #: Seconds between looks at the whitelist file.
    CHECK_EVERY_S = 2.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.dlt_whitelist_file
        self._rules: LinkRules | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    def get(self) -> LinkRules:
        now = time.monotonic()
        if self._rules is not None and (self.path is None or now - self._checked < self.CHECK_EVERY_S):
            return self._rules
        self._checked = now
        s = self.settings
        if self.path is None:
            self._rules = LinkRules.build(s.dlt_url_whitelist, s.dlt_cbn_whitelist, s.dlt_links)
            return self._rules
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime, st.st_size)
            if stamp == self._stamp and self._rules is not None:
                return self._rules
            with open(self.path, encoding="utf-8") as fh:
                urls, cbns = parse_whitelist(fh.read(), self.path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if self._rules is None:  # nothing to check against yet: refuse, typed, before anything is written
                raise ConfigurationError(f"dlt_whitelist_file: {exc}") from exc
            log.warning("whitelist file not re-read (%s); keeping the previous entries", exc)
            return self._rules
        self._rules = LinkRules.build([*s.dlt_url_whitelist, *urls], [*s.dlt_cbn_whitelist, *cbns],
                                      s.dlt_links)
        self._stamp = stamp
        log.info("whitelist loaded: %d URL prefix(es), %d call-back number(s)", len(self._rules.urls),
                 len(self._rules.cbns))
        return self._rules
