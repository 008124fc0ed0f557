"""Tests of the digital twin."""
