"""Validation: versioned datasets, targets, the runner, consistency and adversarial suites,
gate statistics and reports (docs/evals.md)."""
