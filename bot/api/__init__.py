"""HTTP API: webhooks, health, metrics."""
