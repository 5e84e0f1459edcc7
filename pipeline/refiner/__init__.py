"""Seed 003, the refiner: copies each input object twice and writes a manifest of the copies."""
