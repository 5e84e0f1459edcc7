"""What happened during a run: the timeline of events, and reports built from it."""
