"""Reusable widgets: the virtual register list, the municipality picker, the weekly chart."""
