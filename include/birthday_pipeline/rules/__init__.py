"""The pure time and data rules: calendar dates and 9 AM instants, time zones (IANA and Rails names), blank text and the
occasion registry, safe templates, language tags and request body shapes. No database, no network, no Airflow."""
