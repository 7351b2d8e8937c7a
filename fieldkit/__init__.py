"""fieldkit: the offline field kit of a Service Delivery Facilitator."""

__version__ = "0.1.0"
