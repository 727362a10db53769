"""A small typed client of the simulator's control API (``/_sim/...``), for tests, the demo and benchmarks."""

from __future__ import annotations

from typing import Any

import requests

#: Rows fetched per page when reading the whole ledger or call log.
PAGE = 5000


class AdminClient:
    """Drives one running simulator; ``root_url`` is ``http://host:port`` (no ``/api/v1``)."""

    def __init__(self, root_url: str, *, timeout: float = 10.0) -> None:
        self.root_url = root_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> Any:
        resp = self.session.request(method, f"{self.root_url}/_sim/{path}", json=body, params=params,
                                    timeout=self.timeout)
        if resp.status_code == 400:
            raise ValueError(resp.json().get("error", resp.text))
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        self.session.close()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")  # type: ignore[no-any-return]

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")  # type: ignore[no-any-return]

    def set_faults(self, *, clear: bool = False, **faults: Any) -> dict[str, Any]:
        """Merge these fault settings (see faults.Faults); ``clear=True`` first turns every fault off."""
        return self._call("POST", "faults", {**faults, "clear": clear})  # type: ignore[no-any-return]

    def clear_faults(self) -> dict[str, Any]:
        return self.set_faults(clear=True)

    def credits(self) -> dict[str, int]:
        return self._call("GET", "credits")  # type: ignore[no-any-return]

    def set_credits(self, **balances: int) -> dict[str, int]:
        """Set package balances by name: ``set_credits(OTP=0, Transactional=10)``."""
        return self._call("POST", "credits", balances)  # type: ignore[no-any-return]

    def ledger_page(self, offset: int = 0, limit: int = PAGE, job_id: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if job_id:
            params["job_id"] = job_id
        return self._call("GET", "ledger", params=params)  # type: ignore[no-any-return]

    def ledger(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Every accepted message (optionally of one job), oldest first."""
        return self._all("ledger", job_id)

    def calls_page(self, offset: int = 0, limit: int = PAGE) -> dict[str, Any]:
        return self._call("GET", "calls", params={"offset": offset, "limit": limit})  # type: ignore[no-any-return]

    def calls(self) -> list[dict[str, Any]]:
        """Every API call the simulator still remembers, oldest first."""
        return self._all("calls", None)

    def _all(self, what: str, job_id: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            if what == "ledger":
                page = self.ledger_page(offset, PAGE, job_id)
            else:
                page = self.calls_page(offset, PAGE)
            items.extend(page["items"])
            offset += PAGE
            if not page["items"] or offset >= page["total"]:
                return items

    def reset(self, seed: int | None = None) -> None:
        """Forget messages and calls; restore start-up credits, catalog, faults, lifecycle, clock."""
        self._call("POST", "reset", {} if seed is None else {"seed": seed})

    def now(self) -> float:
        return float(self._call("GET", "clock")["now"])

    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns the new simulated time (epoch seconds)."""
        return float(self._call("POST", "clock", {"advance_s": seconds})["now"])

    def lifecycle(self) -> dict[str, float]:
        return self._call("GET", "lifecycle")  # type: ignore[no-any-return]

    def set_lifecycle(self, **settings: float) -> dict[str, float]:
        """Change delays/rates (see lifecycle.Lifecycle); they apply to messages accepted afterwards."""
        return self._call("POST", "lifecycle", settings)  # type: ignore[no-any-return]

    def set_shapes(self, send_shape: str | None = None, report_shape: str | None = None) -> dict[str, str]:
        body = {k: v for k, v in (("send_shape", send_shape), ("report_shape", report_shape)) if v}
        return self._call("POST", "shapes", body)  # type: ignore[no-any-return]

    def catalog(self) -> dict[str, Any]:
        return self._call("GET", "catalog")  # type: ignore[no-any-return]

    def set_catalog(self, catalog: dict[str, Any]) -> dict[str, Any]:
        """Replace the sender ids and templates (``{"senders": [...], "templates": [...]}``)."""
        return self._call("POST", "catalog", catalog)  # type: ignore[no-any-return]

    def variants(self, **changes: Any) -> dict[str, Any]:
        """The answer variants (see variants.Variants); with arguments, merge them first
        (``variants(order="shuffled", omit_rate=0.1)``; ``clear=True`` first returns to the defaults)."""
        if not changes:
            return self._call("GET", "variants")  # type: ignore[no-any-return]
        return self._call("POST", "variants", changes)  # type: ignore[no-any-return]

    def spent(self) -> dict[str, int]:
        """Credits charged per package since the last reset: ``{"OTP": n, "Promotional": n, ...}``."""
        return self._call("GET", "spent")  # type: ignore[no-any-return]
