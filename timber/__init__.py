"""Timber: compile trained classical ML models to fast native inference code."""
