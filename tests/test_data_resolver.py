"""The data resolver: explicit folder, $MAGNET_ST_DATA, ../shared/datasets, packaged sample, Hub copy."""

import pytest

from magnet_st.data import hub
from magnet_st.data.paths import SAMPLE_DIR, DataNotFoundError, dataset_file
from magnet_st.data.sts import read_stsb

STSB_DEV = ("stsbenchmark", "sts-dev.csv")


def _write(root, text):
    path = root.joinpath(*STSB_DEV)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder with no ../shared beside it, no $MAGNET_ST_DATA and an empty cache."""
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("MAGNET_ST_DATA", raising=False)
    monkeypatch.setenv("MAGNET_ST_CACHE", str(tmp_path / "cache"))
    return work


def test_resolver_order_explicit_then_env_then_shared_then_sample(workdir, tmp_path, monkeypatch):
    shared = _write(tmp_path / "a" / "shared" / "datasets", "shared")
    env = _write(tmp_path / "env", "env")
    explicit = _write(tmp_path / "explicit", "explicit")
    monkeypatch.setenv("MAGNET_ST_DATA", str(tmp_path / "env"))
    assert dataset_file(tmp_path / "explicit", *STSB_DEV).resolve() == explicit.resolve()
    assert dataset_file(None, *STSB_DEV).resolve() == env.resolve()
    monkeypatch.delenv("MAGNET_ST_DATA")
    assert dataset_file(None, *STSB_DEV).resolve() == shared.resolve()
    shared.unlink()  # the local folder lacks the file: the packaged sample, when asked for
    assert dataset_file(None, *STSB_DEV, sample=True) == SAMPLE_DIR.joinpath(*STSB_DEV)
    with pytest.raises(DataNotFoundError, match="explicit folder"):  # a folder named on purpose is not mixed
        dataset_file(tmp_path / "elsewhere", *STSB_DEV, hub=False)


def test_offline_error_lists_every_place_and_the_hub_id(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("MAGNET_ST_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def offline(self):
        raise ConnectionError("Couldn't reach the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(hub.HubCopy, "load", offline)
    with pytest.raises(DataNotFoundError) as error:
        dataset_file(tmp_path / "explicit", "stsbenchmark", "sts-test.csv", sample=True)  # not in the sample
    message = str(error.value)
    for place in ("explicit", "packaged sample", "mteb/stsbenchmark-sts", "OfflineMode"):
        assert place in message
    with pytest.raises(DataNotFoundError, match=r"\$MAGNET_ST_DATA(.|\n)*facebook/lama"):  # named all the same
        dataset_file(None, "lama", "relations.jsonl")


def test_hub_copy_is_converted_once_into_the_readers_layout(workdir, monkeypatch):
    from datasets import Dataset, DatasetDict

    pairs = {"sentence1": ["A cat.", "A dog runs."], "sentence2": ["A kitten.", "Cars."], "score": [4.5, 0.2]}
    calls = []

    def fake_load(self):
        calls.append(self.dataset)
        return DatasetDict({split: Dataset.from_dict(pairs) for split in ("train", "validation", "test")})

    monkeypatch.setattr(hub.HubCopy, "load", fake_load)
    path = dataset_file(None, *STSB_DEV)
    assert path == hub.hub_cache_dir().joinpath(*STSB_DEV)
    assert read_stsb(path) == pairs
    assert dataset_file(None, "stsbenchmark", "sts-test.csv").is_file() and calls == ["mteb/stsbenchmark-sts"]


def test_conll_hub_copy_keeps_tag_names(workdir, monkeypatch):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    from magnet_st.data.conll import conll2003_split

    features = Features(
        {
            "tokens": Sequence(Value("string")),
            "pos_tags": Sequence(ClassLabel(names=["NNP", "VBZ"])),
            "chunk_tags": Sequence(ClassLabel(names=["B-NP", "B-VP"])),
            "ner_tags": Sequence(ClassLabel(names=["O", "B-PER"])),
        }
    )
    row = {"tokens": [["Peter", "runs"]], "pos_tags": [[0, 1]], "chunk_tags": [[0, 1]], "ner_tags": [[1, 0]]}
    data = DatasetDict({s: Dataset.from_dict(row, features=features) for s in ("train", "validation", "test")})
    monkeypatch.setattr(hub.HubCopy, "load", lambda self: data)
    (sentence,) = conll2003_split(None, "valid")
    assert sentence.words == ["Peter", "runs"] and sentence.tags["ner"] == ["B-PER", "O"]


def test_packaged_sample_is_small_and_licensed():
    files = [path for path in SAMPLE_DIR.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 500_000
    assert (SAMPLE_DIR / "README.md").is_file() and (SAMPLE_DIR / "stsbenchmark" / "LICENSE.txt").is_file()
    assert len(read_stsb(SAMPLE_DIR.joinpath(*STSB_DEV))["score"]) == 400


def test_quickstart_runs_on_the_packaged_sample(workdir, tiny_decoder_dir, capsys, monkeypatch):
    from magnet_st.cli import main

    monkeypatch.setattr(hub.HubCopy, "load", lambda self: pytest.fail("the Hub must not be asked"))
    argv = ["quickstart", "--base", tiny_decoder_dir, "--output", "magnet-tiny", "--steps", "2", "--batch-size", "4"]
    assert main(argv + ["--sts-pairs", "30", "--max-texts", "64"]) == 0
    printed = capsys.readouterr().out
    assert "using the packaged sample (wiki1m_for_simcse.txt, sts-dev.csv)" in printed
    assert "-> MAGNET" in printed and (workdir / "magnet-tiny" / "modules.json").is_file()
