"""Prefect flows for docvlm: thin orchestration around the library (entrypoints for deployments).

``flows.pipeline`` holds the flows; ``flows.testing`` a pytest plugin with a once-per-session
``prefect_test_harness``.
"""
