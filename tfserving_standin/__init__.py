"""A local stand-in for tensorflow_model_server, for machines without it and for the tests;
nothing in ave_tf imports it (`python -m tfserving_standin.serve`, docs/serving.md)."""
