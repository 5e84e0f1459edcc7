"""Pieces every flow shares: configuration, AWS clients, logging, clock, idempotency."""
