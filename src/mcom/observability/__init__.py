"""The operator's view of the connector: metrics, health, hourly activity and attempt history."""
