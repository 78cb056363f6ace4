"""A data source plugin as ML Launchpad's examples/bogusdatasource.py writes one."""

import pandas as pd

from keel.compat.launchpad.resource import DataSource


class BogusDataSource(DataSource):
    """DataSource for creating nonsense"""

    serves = ["bogus"]  # noqa: RUF012 (as ML Launchpad plugins write it)

    def get_dataframe(self, params=None, chunksize=None):
        if chunksize:
            raise NotImplementedError("Buffered reading not supported yet")
        return pd.DataFrame({"a": [3, 4, 5], "b": [6, 7, 8]}, **self.options)

    def get_raw(self, params=None, chunksize=None):
        raise NotImplementedError("Raw bogus not supported yet")
