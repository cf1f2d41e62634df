"""Deployment entrypoint: ``flows/pipeline.py:pipeline_flow`` (and ``:extract_flow``).

The flows live in the installed package (:mod:`docvlm.flows.pipeline`); this file only makes
them reachable by path for ``prefect deploy`` / ``prefect.yaml`` entrypoints in a checkout.
"""

from docvlm.flows.pipeline import extract_flow, pipeline_flow

__all__ = ["extract_flow", "pipeline_flow"]
