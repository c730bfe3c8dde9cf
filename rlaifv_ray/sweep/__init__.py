"""Sweeps: variants of one config over seeds (spec.py), their results side by side (table.py); the
runs themselves are scheduled on Ray by pipeline/sweep_runs.py."""
