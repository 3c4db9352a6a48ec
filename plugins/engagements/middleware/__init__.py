"""Middleware of the API server: checks that refuse a request before Airflow acts on it."""
