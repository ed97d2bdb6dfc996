"""Offline analysis: evaluation on recorded outcomes, training and calibration of routers.

Nothing here is on a request's path; the engine and what a request touches live in
``langchain_tiered_router.core``. Dependencies point one way: analysis -> core.
"""
