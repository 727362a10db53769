"""smspoint-dispatcher: enqueue SMS in a sub-millisecond call; workers batch them into TheSMSPoint bulk calls."""

__version__ = "0.1.0"
