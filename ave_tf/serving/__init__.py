"""Clients of TF Serving's REST and gRPC APIs for the exported PSP models, and the REST format.

The local stand-in server is not part of the library: it is a package of its own.
"""
