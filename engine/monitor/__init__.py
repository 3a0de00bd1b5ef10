"""Position monitor: a periodic cycle over advising and automated accounts."""
