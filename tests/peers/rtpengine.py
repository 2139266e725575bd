"""Fixtures that start a private rtpengine for a test."""
