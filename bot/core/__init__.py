"""Channel-agnostic core shared by Telegram, Discord and the console: delivery, rendering, approvals."""
