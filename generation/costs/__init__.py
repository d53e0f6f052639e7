"""Prices, spent cost, budgets, learned credential profiles and estimates before a run."""
