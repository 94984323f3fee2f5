"""The pipeline's SQL statements and migrations, one file each; shipped in the wheel as ``birthday_pipeline.sql``."""
