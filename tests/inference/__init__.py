"""Tests of the inference package: model client, health check, prompts and schemas."""
