# A data source and sink plugin written the ML Launchpad way (its examples/bogusdatasource.py
# shape), with only the import prefix changed. It counts its reads so tests see the caching.
import logging

import pandas as pd

from keel.compat.launchpad.resource import DataSink, DataSource

logger = logging.getLogger(__name__)

READS = []


class BogusDataSource(DataSource):
    """DataSource for creating nonsense"""

    serves = ["bogus"]  # noqa: RUF012  (written as for ML Launchpad)

    def get_dataframe(self, params=None, chunksize=None):
        if chunksize:
            raise NotImplementedError("Buffered reading not supported yet")
        READS.append((self.id, params))
        kw_options = self.options
        frame = pd.DataFrame({"a": [3, 4, 5], "b": [6, 7, 8]}, **kw_options)
        frame["flavour"] = self.config.get("flavour", "plain")
        return frame

    def get_raw(self, params=None, chunksize=None):
        raise NotImplementedError("Raw bogus not supported yet")


class BogusDataSink(DataSink):
    """DataSink writing nonsense to a text file"""

    serves = ["bogus"]  # noqa: RUF012  (written as for ML Launchpad)

    def __init__(self, identifier, datasink_config):
        super().__init__(identifier, datasink_config)
        self.target = datasink_config["target_file"]

    def put_dataframe(self, dataframe, params=None, chunksize=None):
        with open(self.target, "w") as f:
            f.write(dataframe.to_csv(index=False))

    def put_raw(self, raw_data, params=None, chunksize=None):
        with open(self.target, "w") as f:
            f.write(raw_data)
