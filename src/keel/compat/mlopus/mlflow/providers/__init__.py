"""mlopus' ``mlflow.providers``: the API classes ``get_api`` can build.

``mlflow`` (mlopus' default plugin, also named ``keel``) is keel's store named by
``tracking_uri``; ``generic`` reads only a cache folder (always offline).
"""
