"""The sentiment pipeline's support file: text cleaning (no corpora to download)."""

import re


def process_text(text):
    text = text.lower().strip()
    return re.sub(r"[^a-z ]+", " ", text)
