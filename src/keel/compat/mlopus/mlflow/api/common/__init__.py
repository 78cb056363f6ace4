"""mlopus' ``mlflow.api.common``: entity schemas, exceptions and the file transfer settings."""
