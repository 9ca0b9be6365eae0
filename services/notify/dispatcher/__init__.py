"""The webhook dispatcher: claims due deliveries, sends them signed, records every attempt,
retries on the schedule of its domain and parks what keeps failing; operators list deliveries
and re-drive parked ones (its api)."""
