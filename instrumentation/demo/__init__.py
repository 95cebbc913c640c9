"""The demo agent runtime."""
