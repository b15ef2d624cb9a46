"""MTEB registration: ModelMeta from a saved MAGNET folder, the loader, and EOS in every loading path."""

import pytest

pytest.importorskip("mteb")

from magnet_st.data.paths import dataset_file  # noqa: E402
from magnet_st.data.sts import read_stsb  # noqa: E402


@pytest.fixture(scope="module")
def saved_dir(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mteb") / "magnet-tiny"
    tiny_model.save(str(folder))
    return folder


def test_model_meta_is_filled_from_the_folder(saved_dir, tiny_model):
    from mteb.models.model_meta import ModelMeta
    from safetensors import safe_open

    from magnet_st.evaluation.mteb_model import MagnetMtebEncoder, magnet_model_meta

    meta = magnet_model_meta(saved_dir, license="apache-2.0")
    with safe_open(str(saved_dir / "model.safetensors"), "pt") as weights:
        parameters = sum(weights.get_tensor(name).numel() for name in weights.keys())
    assert ModelMeta.model_validate(meta.model_dump()) == meta  # validates as mteb's own schema
    assert meta.name == "magnet-st/magnet-tiny" and meta.loader is MagnetMtebEncoder
    assert meta.n_parameters == parameters and meta.embed_dim == 64 and meta.max_tokens == 128
    assert meta.similarity_fn_name.value == "cosine" and meta.use_instructions is True
    assert meta.adapted_from == tiny_model.decoder.base_model and meta.license == "apache-2.0"
    with pytest.raises(FileNotFoundError, match="not a saved MAGNET folder"):
        magnet_model_meta(saved_dir / "1_Pooling")


def test_mteb_evaluate_through_the_loader_matches_the_suite_path(saved_dir, tmp_path, monkeypatch):
    from magnet_st import load_model
    from magnet_st.evaluation.mteb_model import magnet_model_meta
    from magnet_st.evaluation.mteb_tasks import local_sts_task, run_mteb

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    rows = read_stsb(dataset_file(None, "stsbenchmark", "sts-dev.csv", sample=True))
    pairs = {key: values[:40] for key, values in rows.items()}
    suite = run_mteb(load_model(str(saved_dir)), [local_sts_task("LocalSTS-dev", pairs)])  # today's suite path
    encoder = magnet_model_meta(saved_dir).load_model(device="cpu")
    loaded = run_mteb(encoder, [local_sts_task("LocalSTS-dev", pairs)])
    assert loaded["LocalSTS-dev"].get_score() == pytest.approx(suite["LocalSTS-dev"].get_score(), abs=1e-6)
    assert (
        encoder.instruction_for(local_sts_task("x", pairs).metadata) == "Given the sentence, find its representation: "
    )

    custom = magnet_model_meta(saved_dir, instructions={"STS": "Compare: "}).load_model(device="cpu")
    assert custom.instruction_for(local_sts_task("x", pairs).metadata) == "Compare: "


def _last_ids(model, text="A short sentence."):
    features = model.preprocess([text])
    ids = features["input_ids"][0][features["attention_mask"][0].bool()]
    return ids.tolist()


def test_eos_is_appended_in_every_loading_path(saved_dir):
    from sentence_transformers import SentenceTransformer

    from magnet_st import load_model
    from magnet_st.evaluation.mteb_model import magnet_model_meta

    plain = SentenceTransformer(str(saved_dir), device="cpu")
    magnet = load_model(str(saved_dir), device="cpu")
    mteb_model = magnet_model_meta(saved_dir).load_model(device="cpu").model
    eos = plain.tokenizer.eos_token_id
    for model in (plain, magnet, mteb_model):
        ids = _last_ids(model)
        assert ids[-1] == eos and ids.count(eos) == 1  # last-token pooling reads the EOS state
    assert _last_ids(plain) == _last_ids(magnet) == _last_ids(mteb_model)


@pytest.mark.real_model
def test_eos_is_appended_for_the_real_tokenizer(real_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    real_model.save(str(tmp_path / "real"))
    plain = SentenceTransformer(str(tmp_path / "real"), device="cpu")
    assert _last_ids(plain)[-1] == plain.tokenizer.eos_token_id == _last_ids(real_model)[-1]
