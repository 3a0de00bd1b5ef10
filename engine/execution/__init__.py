"""Execution: decisions and manual actions become order intents, placed once, under guards, recorded."""
