"""Tests of the twin's metrics: each against values worked out by hand."""
