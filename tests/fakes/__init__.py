"""Local fakes of external services, over real protocols, for tests."""
