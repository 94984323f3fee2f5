"""The edge where Airflow meets the package: Variables, connections, the running task instance, the HTTP and alert
clients, the cluster policy and one module of task bodies per DAG. The only part that imports Airflow at run time."""
