"""The built-in adversarial suite: probes by family, each with the detector that judges it."""
