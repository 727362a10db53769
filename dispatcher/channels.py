"""Named channels (the public API) and how they map to the gateway's packages and lanes."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A message's channel. The gateway numbers them (1/2/3); we name them."""

    TRANSACTIONAL = "transactional"
    PROMOTIONAL = "promotional"
    OTP = "otp"

    @property
    def package(self) -> str:
        """The credit package the gateway charges this channel against (get-sms-balance keys)."""
        return _PACKAGES[self]

    @classmethod
    def parse(cls, value: object) -> Channel:
        """Accept a Channel or its name in any case; raise ValueError naming the choices."""
        if isinstance(value, Channel):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        choices = ", ".join(c.value for c in cls)
        raise ValueError(f"unknown channel {value!r}; expected one of: {choices}")


_PACKAGES = {
    Channel.TRANSACTIONAL: "Transactional",
    Channel.PROMOTIONAL: "Promotional",
    Channel.OTP: "OTP",
}

#: The gateway's package names, as get-sms-balance spells them.
PACKAGES: tuple[str, ...] = tuple(_PACKAGES.values())

#: The gateway's channel number per named channel, as its documentation lists them (1, 2, 3); an account
#: may number them otherwise (``Settings.channel_map``).
DEFAULT_CHANNEL_MAP: dict[str, int] = {Channel.TRANSACTIONAL.value: 1, Channel.PROMOTIONAL.value: 2,
                                       Channel.OTP.value: 3}

#: Lanes are named after channels; OTP is the latency-first lane.
LANES: tuple[str, ...] = tuple(c.value for c in Channel)
