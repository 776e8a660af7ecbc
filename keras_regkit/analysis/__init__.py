"""Diagnosis, uncertainty, comparisons and plots."""
