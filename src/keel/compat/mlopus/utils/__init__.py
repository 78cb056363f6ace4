"""The parts of ``mlopus.utils`` that code using mlopus' MLflow API meets: ``paths.IllegalPath``."""
