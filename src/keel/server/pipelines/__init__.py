"""Pipelines on the platform server: mlopen-style uploads, trained and run as jobs.

* :mod:`~keel.server.pipelines.store`: uploaded pipelines and input files on disk, checked.
* :mod:`~keel.server.pipelines.params`: a pipeline's ``get_params()`` as form fields.
* :mod:`~keel.server.pipelines.jobs`: Train and Run as executor jobs, and the code they run.
* :mod:`~keel.server.pipelines.results`: a run's ``preds`` stored on it and read back.
* :mod:`~keel.server.pipelines.service`: what the UI and the REST API share.

Nothing is imported here: the job processes import these modules without the web stack.
"""
