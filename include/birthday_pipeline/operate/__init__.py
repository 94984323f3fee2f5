"""Operating the pipeline: window reports, alerts, metrics, retention of the history and the manual resend."""
