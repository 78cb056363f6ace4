"""The sentiment pipeline's support file: accuracy on the test statements."""


def get_model_metrics(tfidf, model, corpus, sentiments, verbose=False):
    predicted = model.predict(tfidf.transform(corpus))
    accuracy = sum(int(p == s) for p, s in zip(predicted, sentiments)) / max(len(sentiments), 1)
    if verbose:
        print(f"accuracy: {accuracy:.2f}")
    return {"accuracy": accuracy}
