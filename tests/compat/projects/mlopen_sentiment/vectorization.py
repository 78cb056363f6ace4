"""The sentiment pipeline's support file: TF-IDF features."""

from sklearn.feature_extraction.text import TfidfVectorizer


def fit_tf_idf(corpus):
    vectorizer = TfidfVectorizer()
    vectorizer.fit(corpus)
    return vectorizer


def tf_idf(corpus, vectorizer):
    return vectorizer.transform(corpus)
