"""CoNLL reader: the real CoNLL-2003 split sizes, column layouts by name, malformed lines with line numbers."""

import pytest

from magnet_st.data.conll import check_tagged, conll2003_split, read_conll


def test_conll2003_test_split_has_standard_counts():
    sentences = conll2003_split(None, "test")
    assert len(sentences) == 3453
    assert sum(len(sentence.words) for sentence in sentences) == 46435
    first = sentences[0]
    assert first.words[:3] == ["SOCCER", "-", "JAPAN"]
    assert set(first.tags) == {"pos", "chunk", "ner"}
    assert first.tags["ner"][2] == "B-LOC"
    assert all(len(tags) == len(sentence.words) for sentence in sentences for tags in sentence.tags.values())
    tags = {tag for sentence in sentences for tag in sentence.tags["ner"]}
    assert tags == {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"}


def test_any_column_layout_by_name(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("B-PER\tJohn Smith\tNNP\nO\tran\tVBD\n\nO\tHi\tUH\n", encoding="utf-8")
    sentences = read_conll(path, columns=["ner", "token", "pos"], word_column="token", delimiter="\t")
    assert [sentence.words for sentence in sentences] == [["John Smith", "ran"], ["Hi"]]
    assert sentences[0].tags == {"ner": ["B-PER", "O"], "pos": ["NNP", "VBD"]}
    assert [sentence.line for sentence in sentences] == [1, 4]


def test_docstart_is_skipped_and_max_sentences(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\na DT B-NP O\n\nb DT B-NP O\n\nc DT B-NP O\n", encoding="utf-8")
    assert [s.words for s in read_conll(path)] == [["a"], ["b"], ["c"]]
    assert [s.words for s in read_conll(path, max_sentences=2)] == [["a"], ["b"]]


def test_malformed_line_reports_its_number(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt, line 4: expected 4 columns \(word pos chunk ner\), got 3"):
        read_conll(path)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_conll(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="word_column"):
        read_conll(tmp_path / "missing.txt", columns=["token", "ner"])
    with pytest.raises(ValueError, match="split"):
        conll2003_split(None, "dev")


def test_mismatched_word_and_tag_counts():
    with pytest.raises(ValueError, match="Sentence 1 has 2 words but 1 tags"):
        check_tagged([["a"], ["b", "c"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 sentences but 1 tag sequences"):
        check_tagged([["a"], ["b"]], [["O"]])
    with pytest.raises(ValueError, match="Sentence 0 is empty"):
        check_tagged([[]], [[]])
