"""A stand-in for the jsonpickle package, which keel does not depend on: the tutorial's
``jsonpickle.encode``/``decode`` over pickle, as a JSON string. Delete this file where the
real jsonpickle is installed."""

import base64
import json
import pickle


def encode(value):
    return json.dumps({"pickle": base64.b64encode(pickle.dumps(value)).decode("ascii")})


def decode(text):
    return pickle.loads(base64.b64decode(json.loads(text)["pickle"]))
