"""Fault injection for chaos runs: proxies that slow, reset or blackhole traffic."""
