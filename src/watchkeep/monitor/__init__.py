"""Monitoring: metrics, quality, online evaluation, drift, anomalies, monitors and alerts."""
