"""The training-corpus builder: sources read right, passages kept, duplicates and evaluation texts removed."""

import csv
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from magnet_st.data.corpus import CorpusConfig, build_corpus
from magnet_st.data.corpus_sources import detokenize, split_sentences

SHARED = Path(os.environ.get("MAGNET_ST_DATA", Path("..") / "shared" / "datasets"))  # as the evaluation resolves it

STS_SENTENCE = "A woman is slicing an onion on the board."
STORY = ["Ann baked a cake.", "She burnt it badly.", "Her dog ate it anyway.", "Ann laughed.", "She baked again."]


def _zip(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)


def _write_csv(path: Path, rows, **options) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, **options).writerows(rows)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A miniature of every source and evaluation set, with one evaluation sentence planted in training data."""
    root = tmp_path / "datasets"
    for folder in (
        "stsbenchmark",
        "conll2003",
        "rocstories_sample_11k",
        "story_cloze_2016",
        "wikisplit",
        "wiki1m_for_simcse_head",
        "lama/Squad",
        "nltk_corpora",
    ):
        (root / folder).mkdir(parents=True)
    for split in ("train", "dev", "test"):
        sts_row = ["main-captions", "MSRvid", "2012", "0001", "4.2", STS_SENTENCE, "Someone slices an onion."]
        _write_csv(root / "stsbenchmark" / f"sts-{split}.csv", [sts_row], delimiter="\t")
    (root / "conll2003" / "test.txt").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    _write_csv(root / "rocstories_sample_11k" / "ROCstory_train_1w.csv", [["id1", "Cake", *STORY]])
    held_out_story = ["Tim ran.", "He fell.", "He cried a lot today.", "Mom came.", "All was well."]
    _write_csv(root / "rocstories_sample_11k" / "ROCstory_test_1k.csv", [["id2", "Run", *held_out_story]])
    _write_csv(
        root / "story_cloze_2016" / "cloze_val.csv",
        [
            ["InputStoryid", "s1", "s2", "s3", "s4", "e1", "e2", "a"],
            ["id3", "A b c d.", "E f g h.", "I j k l.", "M n o p.", "Q r s t.", "U v w x.", "1"],
        ],
    )
    (root / "wikisplit" / "validation.tsv").write_text("The band 's album , '' Blue '' , sold well .\tx <::::> y\n")
    (root / "wikisplit" / "tune.tsv").write_text("")
    (root / "wikisplit" / "test.tsv").write_text("")
    wiki = ["Paris is the capital of France and a big city."] * 2 + [f"Held out line {i} is here." for i in range(1000)]
    (root / "wiki1m_for_simcse_head" / "wiki1m_for_simcse.txt").write_text("\n".join(wiki) + "\ncut mid sente")
    squad = {"masked_sentences": ["The river Seine flows through [MASK] in France."], "obj_label": "Paris"}
    (root / "lama" / "Squad" / "test.jsonl").write_text(json.dumps(squad) + "\n")
    brown = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n\n\nMerger/nn-hl proposed/vbn-hl\n"
        "It/pps urged/vbd the/at city/nn ,/, again/rb ./.\n"
    )
    _zip(root / "nltk_corpora" / "brown.zip", {"brown/ca01": brown, "brown/README": "readme"})
    abc = f"Headline without stop\n{STS_SENTENCE}\nFarmers expect rain this week.\n\nOther headline\nPrices rose again today.\n"
    _zip(root / "nltk_corpora" / "abc.zip", {"abc/rural.txt": abc})
    _zip(root / "nltk_corpora" / "webtext.zip", {"webtext/firefox.txt": "Tabs should stay open after restart\n"})
    address = "TITLE OF THE ADDRESS\n\nMr. Speaker, we meet today. The river Seine flows through Paris in France.\n"
    _zip(root / "nltk_corpora" / "state_union.zip", {"state_union/1945-Truman.txt": address})
    _zip(root / "nltk_corpora" / "inaugural.zip", {"inaugural/1789-Washington.txt": "Fellow citizens, we begin now.\n"})
    return root


def test_corpus_keeps_sentences_and_passages_and_drops_evaluation_texts(tmp_path, data_dir):
    stats = build_corpus(tmp_path / "corpus.txt", data_dir, CorpusConfig(min_words=2, seed=0))
    texts = (tmp_path / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert stats.texts == len(texts) == len(set(texts))
    assert set(STORY) <= set(texts)  # every story sentence alone
    passages = [text for text in texts if text.startswith("Ann baked") and text != STORY[0]]
    assert passages and all(" ".join(STORY).startswith(passage) for passage in passages)  # consecutive sentences
    assert stats.passages >= len(passages)
    assert "Paris is the capital of France and a big city." in texts and stats.dropped_duplicates >= 1
    joined = "\n".join(texts)
    assert "Held out line" not in joined and "cut mid" not in joined  # the evaluation's held-out wiki lines
    assert STS_SENTENCE not in joined  # planted in the ABC news: removed with every passage holding it
    assert "flows through Paris" not in joined  # a LAMA evidence sentence, [MASK] filled in
    assert stats.dropped_evaluation_overlap >= 2
    assert 'The jury said "no".' in texts and "It urged the city, again." in texts  # Brown: tags off, detokenized
    assert not any("/" in text or "Merger" in text or "Headline" in text for text in texts)  # headlines dropped
    assert 'The band\'s album, "Blue", sold well.' in texts  # WikiSplit detokenized
    assert "Mr. Speaker, we meet today." in texts  # no split after an abbreviation


def test_corpus_is_reproducible_and_seeded(tmp_path, data_dir):
    build_corpus(tmp_path / "a.txt", data_dir, CorpusConfig(min_words=2, seed=3))
    build_corpus(tmp_path / "b.txt", data_dir, CorpusConfig(min_words=2, seed=3))
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"max_passage_sentences": 1}, "max_passage_sentences"),
        ({"passage_rate": 1.5}, "passage_rate"),
        ({"min_words": 0}, "min_words"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_bad_config_names_the_argument(options, argument):
    with pytest.raises(ValueError, match=argument):
        CorpusConfig(**options)


def test_sentence_split_and_detokenize():
    assert split_sentences("Dr. Who came. He left! Then J. Smith spoke.") == [
        "Dr. Who came.",
        "He left!",
        "Then J. Smith spoke.",
    ]
    assert detokenize("`` Yes , '' he said ( twice ) .".split()) == '"Yes," he said (twice).'
    assert detokenize("they do n't know it 's 5 % .".split()) == "they don't know it's 5%."


def _independent_key(sentence: str) -> str:
    return re.sub(r"[\W_]+", "", sentence.lower())


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the shared data sets beside the checkout")
def test_real_corpus_is_large_and_shares_no_sentence_with_evaluation_sets(tmp_path):
    stats = build_corpus(tmp_path / "corpus.txt", SHARED)
    texts = (tmp_path / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert stats.texts == len(texts) >= 150_000
    assert stats.passages >= 20_000
    # Evaluation sentences read here independently of the builder (its readers and normalisation unused).
    evaluation = set()
    with open(SHARED / "stsbenchmark" / "sts-test.csv", encoding="utf-8") as file:
        for line in file:
            evaluation.update(line.rstrip("\n").split("\t")[5:7])
    with open(SHARED / "rocstories_sample_11k" / "ROCstory_test_1k.csv", encoding="utf-8", newline="") as file:
        for row in csv.reader(file):
            evaluation.update(row[2:7])
    wiki = (SHARED / "wiki1m_for_simcse_head" / "wiki1m_for_simcse.txt").read_text(encoding="utf-8").split("\n")
    evaluation.update(wiki[-1001:-1])
    with open(SHARED / "lama" / "Squad" / "test.jsonl", encoding="utf-8") as file:
        for line in file:
            row = json.loads(line)
            evaluation.update(s.replace("[MASK]", row["obj_label"]) for s in row["masked_sentences"])
    keys = {_independent_key(sentence) for sentence in evaluation if len(sentence.split()) >= 4}
    for text in texts:
        pieces = [text, *re.split(r"(?<=[.!?])\s+", text)]
        assert not any(_independent_key(piece) in keys for piece in pieces), text


def test_cli_builds_the_corpus_and_reports_bad_input_in_one_line(tmp_path, data_dir, capsys):
    from magnet_st.cli import main

    assert main(["corpus", "--out", str(tmp_path / "c.txt"), "--data", str(data_dir)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["texts"] == len((tmp_path / "c.txt").read_text(encoding="utf-8").splitlines()) > 0
    assert (
        main(["corpus", "--out", str(tmp_path / "d.txt"), "--data", str(data_dir), "--max-passage-sentences", "1"]) == 2
    )
    assert "max_passage_sentences" in capsys.readouterr().err
    assert not (tmp_path / "d.txt").exists()


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.csv", "corpus.JSON"])
def test_corpus_refuses_a_table_file_name(tmp_path, name):
    from magnet_st.data.corpus import build_corpus

    with pytest.raises(ValueError, match="names a table file"):
        build_corpus(tmp_path / name, tmp_path)
    assert not (tmp_path / name).exists()
