"""Fine-tuning sentence-pair classifiers (``jaxsim train``).

    from jaxsim.train import TrainConfig, read_pairs, split, train
    data = read_pairs("train.tsv")
    train_part, dev = split(data, 0.1, seed=0)
    result = train(None, train_part, dev, "out/mrpc", TrainConfig(epochs=3))
    clf = jaxsim.classifier.load_classifier("out/mrpc")
"""

from jaxsim.train.data import PairData, label_vocabulary, read_pairs, split
from jaxsim.train.loop import TrainConfig, TrainResult, evaluate_encoded, train

__all__ = [
    "PairData", "TrainConfig", "TrainResult", "evaluate_encoded", "label_vocabulary",
    "read_pairs", "split", "train",
]
