"""mlopus' ``mlflow.api``: the API class, the entity handles and their schemas."""
