# The Airflow image of docker-compose.yaml: the official image plus this project's pinned
# requirements. dags/, plugins/ and include/ are mounted at run time, not copied in.
FROM apache/airflow:3.3.2-python3.11

# Installed as the image's `airflow` user (the official image refuses pip as root).
# Naming apache-airflow again keeps pip from changing the image's Airflow version.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/airflow/requirements.txt

# The `engagements` package lives in the mounted plugins folder; this makes it importable by
# every process (tasks, `python -m engagements.cli`), not only by Airflow's plugin loader.
ENV PYTHONPATH=/opt/airflow/plugins
