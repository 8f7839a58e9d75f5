"""SchedulerService: what is due at a time (pure, `cron.py`) and the loop that fires it."""
