"""The engagements portfolio: a FastAPI app that Airflow's api-server mounts at ``/engagements``.

Loaded only when the first request arrives (see ``plugins/engagements_portfolio.py``): the
dag-processor, the scheduler and the workers load plugins too, and pay nothing for this one.
"""
