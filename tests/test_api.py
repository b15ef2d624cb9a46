"""The top-level API stays small: the model, its module classes, the attention modes, infill, generate, train."""

import subprocess
import sys
import types

import pytest

import magnet_st

TOP_LEVEL = set(
    "AttentionMode MagnetDecoder MagnetSentenceTransformer TokenClassificationHead TrainConfig WordPooling __version__ "
    "generate infill load_model train".split()
)


def test_top_level_names_are_the_small_api():
    assert set(magnet_st.__all__) == TOP_LEVEL
    assert TOP_LEVEL <= set(dir(magnet_st))
    for name in magnet_st.__all__:  # the names are imported on first access
        getattr(magnet_st, name)
    public = {
        name
        for name, value in vars(magnet_st).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # subpackages aside
    }
    assert public == TOP_LEVEL - {"__version__"}


def test_top_level_names_are_the_defining_objects():
    from magnet_st.generation.generate import generate
    from magnet_st.generation.infill import infill
    from magnet_st.model import MagnetSentenceTransformer, load_model
    from magnet_st.modules.decoder import MagnetDecoder
    from magnet_st.training.train import TrainConfig, train

    assert magnet_st.load_model is load_model and magnet_st.MagnetSentenceTransformer is MagnetSentenceTransformer
    assert magnet_st.MagnetDecoder is MagnetDecoder and magnet_st.infill is infill and magnet_st.generate is generate
    assert magnet_st.train is train and magnet_st.TrainConfig is TrainConfig
    assert isinstance(magnet_st.__version__, str) and magnet_st.__version__.count(".") == 2


def test_losses_constants_and_results_live_in_their_modules():
    from magnet_st.base_models import DEFAULT_BASE_MODEL, EMBEDDED_MODELS
    from magnet_st.generation import BLANK, BlankFill
    from magnet_st.losses import MagnetLoss, MNTPLoss, MSGLoss, SSCLLoss
    from magnet_st.model import SENTENCE_PROMPT

    for name in ("MagnetLoss", "MNTPLoss", "MSGLoss", "SSCLLoss", "SENTENCE_PROMPT", "BLANK", "BlankFill"):
        assert not hasattr(magnet_st, name), name
    assert DEFAULT_BASE_MODEL in EMBEDDED_MODELS and BLANK and BlankFill and SENTENCE_PROMPT
    assert all(issubclass(loss, MagnetLoss) for loss in (MNTPLoss, MSGLoss, SSCLLoss))


def test_unknown_top_level_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'MagnetLoss'"):
        magnet_st.MagnetLoss  # noqa: B018
    assert not hasattr(magnet_st, "SENTENCE_PROMPT")


def test_import_and_cli_parser_do_not_import_the_heavy_libraries():
    probe = (
        "import sys\nimport magnet_st\nimport magnet_st.cli\nmagnet_st.cli.build_parser()\n"
        "print(sorted(n for n in ('torch', 'transformers', 'sentence_transformers') if n in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
