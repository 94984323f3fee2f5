"""Delivery: claiming due rows under a lease, rendering and signing each webhook, sending them paced and at most so many
at once, and recording every attempt."""
