"""Serving the exported PSP SavedModel over TF Serving's REST API: format, client, server."""
