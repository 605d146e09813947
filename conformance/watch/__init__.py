"""Watch guarantees: recording watch streams and checking them against the reference history."""
