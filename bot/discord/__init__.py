"""The Discord channel (discord.py 2.7): app commands from the registry, free text, persistent approval buttons."""
