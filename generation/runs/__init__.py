"""Runs and attempts: their services and selectors, the worker, and the execution of one run."""
