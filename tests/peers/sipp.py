"""Fixtures that start SIPp peers for a test."""
