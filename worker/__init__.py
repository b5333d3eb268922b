"""Everything a task needs at run time: Redis, the API client, outcomes, dead letters, delays."""
