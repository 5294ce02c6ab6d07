"""The periodic scheduler: entries, firing due slots, leadership and BEAT_SCHEDULE sync."""
