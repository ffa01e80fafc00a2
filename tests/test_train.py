"""Fine-tuning pair classifiers: data reading, learning, early stopping, orbax resume, export.

Fast: a tiny random BERT (d = 32, 2 layers) on a synthetic separable task (the label is the
word "good"/"bad" in sentence a), pairs of at most 16 tokens so every step has one shape.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import transformers

from jaxsim.classifier import load_classifier
from jaxsim.cli import main
from jaxsim.errors import InputTextError, JaxsimError
from jaxsim.train import PairData, TrainConfig, read_pairs, split, train
from jaxsim.train.data import epoch_order, label_vocabulary
from jaxsim.train.loop import early_stopping

NOUNS = ["cat", "dog", "car", "tree", "house", "river", "city", "book", "bird", "road"]
CONFIG = TrainConfig(epochs=3, batch_size=16, learning_rate=2e-3, warmup_ratio=0.1, dropout=0.1,
                     max_length=16, seed=0, patience=0, save_every=4, eval_batch_size=32)


def separable(n: int, seed: int, positive: float = 0.3) -> PairData:
    """Label "pos" iff sentence a says "good" (a minority of ``positive``); b is noise."""
    rng = np.random.default_rng(seed)
    a, b, labels = [], [], []
    for _ in range(n):
        label = int(rng.random() < positive)
        word = "good" if label else "bad"
        a.append(f"{word} {rng.choice(NOUNS)} , {word}")
        b.append(f"a {rng.choice(NOUNS)} and a {rng.choice(NOUNS)}")
        labels.append(label)
    return PairData(tuple(a), tuple(b), np.asarray(labels, np.int32), ("neg", "pos"))


def write_tsv(path, data: PairData):
    rows = ["sentence1\tsentence2\tlabel"]
    rows += [f"{a}\t{b}\t{data.label_names[y]}" for a, b, y in zip(data.text_a, data.text_b, data.labels,
                                                                   strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def task():
    return separable(160, 0), separable(64, 1)


@pytest.fixture(scope="module")
def trained(task, tiny_bert_dir, weights_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return train(str(tiny_bert_dir), *task, out, CONFIG, progress=False, weights_dir=weights_dir)


def test_read_pairs_builds_a_sorted_label_vocabulary(tmp_path):
    path = tmp_path / "snli.tsv"
    path.write_text("sentence1\tsentence2\tlabel\nA b.\tC d.\tneutral\nE f.\t\"G\" h.\tentailment\n"
                    "I j.\tK l.\tcontradiction\n", encoding="utf-8")
    data = read_pairs(path)
    assert data.label_names == ("contradiction", "entailment", "neutral")
    assert data.labels.tolist() == [2, 1, 0]
    assert data.text_b[1] == '"G" h.'  # quotes kept, no CSV unquoting
    assert label_vocabulary(["10", "2", "1"]) == ("1", "2", "10")
    with pytest.raises(InputTextError, match="outside the label set"):
        read_pairs(path, ("entailment", "neutral"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tscore\nx\ty\t1\n", encoding="utf-8")
    with pytest.raises(InputTextError, match="header"):
        read_pairs(bad)
    bad.write_text("sentence1\tsentence2\tlabel\nx\ty\n", encoding="utf-8")
    with pytest.raises(InputTextError, match="line 2: expected 3"):
        read_pairs(bad)


def test_split_and_epoch_order_are_deterministic_and_complete():
    data = separable(50, 3)
    rest, held = split(data, 0.2, seed=4)
    assert len(held) == 10 and len(rest) == 40
    assert set(rest.text_a + held.text_a) == set(data.text_a)
    assert split(data, 0.2, seed=4)[1].text_a == held.text_a
    lengths = np.random.default_rng(0).integers(5, 60, size=103)
    order = epoch_order(lengths, 16, seed=7, epoch=2, group=2)
    assert sorted(np.concatenate(order).tolist()) == list(range(103))
    assert [b.tolist() for b in order] == [b.tolist() for b in epoch_order(lengths, 16, 7, 2, 2)]
    assert [b.tolist() for b in order] != [b.tolist() for b in epoch_order(lengths, 16, 7, 3, 2)]


def test_training_lowers_the_loss_and_beats_the_majority_class(trained, task):
    _, dev = task
    losses = [h["train_loss"] for h in trained.history]
    print(f"\ntrain loss per epoch {losses}; dev accuracy {[h['dev_accuracy'] for h in trained.history]}"
          f"; majority {dev.majority_accuracy():.3f}")
    assert trained.stopped == "completed" and trained.steps == 3 * 10
    assert losses[-1] < losses[0]
    assert trained.best_accuracy > dev.majority_accuracy() + 0.1
    assert (trained.out_dir / "model.safetensors").is_file()


def test_early_stopping_counts_evaluations_without_a_better_dev_accuracy():
    record = {"best_accuracy": -1.0, "best_epoch": -1, "bad_evals": 0}
    decisions = [early_stopping(record, acc, epoch, patience=2)
                 for epoch, acc in enumerate([0.5, 0.7, 0.7, 0.6], start=1)]
    assert decisions == [(True, False), (True, False), (False, False), (False, True)]
    assert record["best_epoch"] == 2 and record["best_accuracy"] == 0.7
    never = {"best_accuracy": 0.9, "best_epoch": 1, "bad_evals": 5}
    assert early_stopping(never, 0.1, 9, patience=0) == (False, False)


def test_resume_after_interruption_ends_with_identical_params(trained, task, tiny_bert_dir, weights_dir,
                                                               tmp_path):
    stop_at_13 = dataclasses.replace(CONFIG, max_steps=13)
    interrupted = train(str(tiny_bert_dir), *task, tmp_path, stop_at_13, progress=False,
                        weights_dir=weights_dir)
    assert interrupted.stopped == "max_steps" and interrupted.steps == 13
    from jaxsim.convert.train_checkpoint import checkpoint_manager

    manager = checkpoint_manager(tmp_path / "checkpoints")
    assert manager.latest_step() == 13
    manager.close()
    resumed = train(str(tiny_bert_dir), *task, tmp_path, CONFIG, progress=False, weights_dir=weights_dir)
    assert resumed.steps == trained.steps
    assert resumed.history == trained.history
    flat_a = np.concatenate([np.ravel(x) for x in _leaves(trained.params)])
    flat_b = np.concatenate([np.ravel(x) for x in _leaves(resumed.params)])
    assert np.array_equal(flat_a, flat_b)  # bitwise: same data order, dropout keys and state


def test_resume_with_other_settings_is_refused(trained, task, tiny_bert_dir, weights_dir, tmp_path):
    import shutil

    shutil.copytree(trained.out_dir, tmp_path / "run", dirs_exist_ok=True)
    other = dataclasses.replace(CONFIG, seed=1)
    with pytest.raises(JaxsimError, match="seed: 0 -> 1"):
        train(str(tiny_bert_dir), *task, tmp_path / "run", other, progress=False, weights_dir=weights_dir)


def _leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_exported_classifier_loads_in_transformers_with_the_same_logits(trained, task, weights_dir):
    _, dev = task
    clf = load_classifier(trained.out_dir, weights_dir=weights_dir)
    assert clf.labels == ("neg", "pos")
    assert clf.accuracy(dev) == pytest.approx(trained.best_accuracy)
    pairs = dev.pairs[:5]
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(trained.out_dir)).eval()
    assert hf.config.id2label == {0: "neg", 1: "pos"}
    tok = transformers.AutoTokenizer.from_pretrained(str(trained.out_dir))
    inputs = tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf(**inputs).logits.numpy()
    np.testing.assert_allclose(clf.logits(pairs), expected, atol=1e-5)


def test_load_classifier_reads_checkpoints_and_converted_hf_classifiers(trained, tiny_bert_classifier_dir,
                                                                        weights_dir):
    latest = load_classifier(trained.out_dir, from_checkpoint=True)
    for a, b in zip(_leaves(latest.params), _leaves(trained.params), strict=True):
        np.testing.assert_array_equal(a, b)
    hf_clf = load_classifier(tiny_bert_classifier_dir, weights_dir=weights_dir)
    assert hf_clf.labels == ("LABEL_0", "LABEL_1", "LABEL_2")
    assert hf_clf.logits([("A cat.", "A dog.")]).shape == (1, 3)
    with pytest.raises(JaxsimError, match="no training checkpoint at step 999"):
        load_classifier(trained.out_dir, step=999)


def test_cli_train_then_explain(task, tiny_bert_dir, weights_dir, tmp_path, capsys):
    train_path = write_tsv(tmp_path / "train.tsv", task[0])
    dev_path = write_tsv(tmp_path / "dev.tsv", task[1])
    out = tmp_path / "cli_run"
    argv = ["train", "--model", str(tiny_bert_dir), "--train", str(train_path), "--dev", str(dev_path),
            "--out", str(out), "--epochs", "3", "--batch-size", "16", "--lr", "2e-3", "--max-length", "16",
            "--save-every", "4", "--patience", "0", "--weights-dir", str(weights_dir), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "best dev accuracy" in printed and (out / "model.safetensors").is_file()
    assert main(["explain", "--method", "gi", "--model", str(out), "--weights-dir", str(weights_dir),
                 "--format", "json", "good cat , good", "a dog"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "gi" and data["labels"] == ["neg", "pos"]
    assert data["tokens"][0] == "[CLS]" and len(data["scores"]) == len(data["tokens"])


def test_deletion_by_gi_removes_accuracy_faster_than_random_on_the_trained_task(trained, task, weights_dir):
    from jaxsim.evaluate.deletion import deletion_curves

    _, dev = task
    clf = load_classifier(trained.out_dir, weights_dir=weights_dir)
    result = deletion_curves(clf, dev, methods=("gi", "lrp", "random"), unit="tokens", steps=(0, 1, 2, 3),
                             min_tokens=5, progress=False)
    print("\n" + result.to_markdown())
    assert result.n_pairs == round(trained.best_accuracy * len(dev))  # the correctly classified pairs
    for m in result.methods:
        assert result.accuracy[m][0] == 1.0  # nothing deleted: all correct by construction
    # The label lives in one repeated word: GI and LRP find it, random rarely does (only the
    # minority "pos" pairs can flip: without "good" they read as the default "neg").
    assert result.accuracy["gi"][-1] < result.accuracy["random"][-1] - 0.1
    assert result.area("gi") < result.area("random")
    assert result.area("lrp") < result.area("random")
    assert result.correlation.shape == (2, 2) and result.correlation[0, 0] == pytest.approx(1.0)


def test_cli_evaluate_deletion_writes_table_plot_and_json(trained, task, weights_dir, tmp_path, capsys):
    dev_path = write_tsv(tmp_path / "dev.tsv", task[1])
    out = tmp_path / "deletion"
    assert main(["evaluate", "deletion", "--model", str(trained.out_dir), "--data", str(dev_path),
                 "--out", str(out), "--methods", "gi,random", "--unit", "tokens", "--steps", "0,1,2",
                 "--min-tokens", "5", "--weights-dir", str(weights_dir), "--no-progress"]) == 0
    assert "| gi |" in (out / "deletion.md").read_text()
    assert (out / "deletion.png").stat().st_size > 0
    import json

    data = json.loads((out / "deletion.json").read_text())
    assert data["methods"] == ["gi", "random"] and len(data["accuracy"]["gi"]) == 3
    assert "| random |" in capsys.readouterr().out


def test_training_a_causal_model_is_refused(task, tiny_gpt_neo_dir, weights_dir, tmp_path):
    with pytest.raises(JaxsimError, match="not a BERT-family encoder"):
        train(str(tiny_gpt_neo_dir), *task, tmp_path, CONFIG, progress=False, weights_dir=weights_dir)
