"""Training precision follows the hardware: bf16 only where it is native, fp32 elsewhere, or what the user asks."""

import importlib

import pytest
import torch

import magnet_st.precision as precision
from magnet_st.precision import check_precision, cpu_flags, cpu_has_native_bf16, training_precision
from magnet_st.training.train import TrainConfig

CPUINFO_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
CPUINFO_SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Sets the CPU the functions see: `cpu(capability, cpuinfo_text_or_None)`."""

    def set_cpu(capability: str, cpuinfo: str | None) -> None:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        path = tmp_path / "cpuinfo"
        if cpuinfo is not None:
            path.write_text(cpuinfo)
        monkeypatch.setattr(precision, "CPUINFO", path)

    return set_cpu


@pytest.mark.parametrize(
    "capability, cpuinfo, expected",
    [
        ("AVX2", CPUINFO_AVX2, "fp32"),
        ("AVX2", None, "fp32"),  # no /proc/cpuinfo: trust the capability
        ("AVX512", "flags\t: avx2 avx512f avx512bw\n", "fp32"),  # AVX-512 without its bf16 extension
        ("AVX512_BF16", None, "bf16"),
        ("AMX", None, "bf16"),
        ("AVX512", CPUINFO_SAPPHIRE_RAPIDS, "bf16"),  # torch reports AVX512; the kernel's flags know better
        ("DEFAULT", "Features\t: fp asimd bf16\n", "fp32"),  # ARM flags are not taken as x86 bf16
        ("NO AVX", "", "fp32"),
    ],
)
def test_native_bf16_is_detected_at_run_time(cpu, capability, cpuinfo, expected, caplog):
    cpu(capability, cpuinfo)
    assert cpu_has_native_bf16() is (expected == "bf16")
    # auto trains CPUs in fp32: bf16 autocast did not pay even where native (benchmarks/precision.py)
    assert training_precision("cpu") == training_precision(torch.device("cpu"), "auto") == "fp32"
    with caplog.at_level("WARNING", logger="magnet_st.precision"):
        assert training_precision("cpu", "bf16") == "bf16"
    assert ("no native bf16" in caplog.text) is (expected == "fp32")


def test_cpu_flags_reads_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO_SAPPHIRE_RAPIDS)
    assert {"avx512_bf16", "amx_bf16"} <= cpu_flags(path)
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("supported, expected", [(True, "bf16"), (False, "fp32")])
def test_cuda_gets_bf16_where_the_gpu_supports_it(cpu, monkeypatch, supported, expected):
    cpu("AVX2", CPUINFO_AVX2)  # the host CPU does not matter for a GPU run
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)
    assert training_precision("cuda") == expected
    assert training_precision("cuda:0") == expected


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("requested", ["bf16", "fp32"])
def test_an_explicit_precision_overrides_the_hardware(cpu, monkeypatch, device, requested):
    cpu("AVX2", CPUINFO_AVX2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert training_precision(device, requested) == requested


@pytest.mark.parametrize("bad", ["fp16", "BF16", None, 16])
def test_bad_precision_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"`precision` must be one of auto, bf16, fp32"):
        check_precision(bad)
    with pytest.raises(ValueError, match=r"`precision` must be one of auto, bf16, fp32"):
        training_precision("cpu", bad)
    with pytest.raises(ValueError, match=r"`precision` must be one of auto, bf16, fp32"):
        TrainConfig(data="texts.txt", output_dir="out", precision=bad)


def test_cli_precision_flag_reaches_the_config_and_rejects_bad_values(capsys):
    from magnet_st.cli import build_parser
    from magnet_st.cli.train import config_from_args

    parser = build_parser()
    for command in (["train", "--data", "t.txt", "--output", "out"], ["quickstart", "--steps", "10"]):
        args = parser.parse_args(command)
        assert config_from_args(args, "t.txt", "out").precision == "auto"
        args = parser.parse_args([*command, "--precision", "fp32"])
        assert config_from_args(args, "t.txt", "out").precision == "fp32"
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--precision", "fp16"])
        assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_build_trainer_uses_the_chosen_precision(tiny_decoder_dir, tmp_path, monkeypatch):
    from magnet_st.training.train import build_trainer

    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"Sentence number {i} is about a cat on a mat." for i in range(8)) + "\n")
    calls = []

    def choose(device, requested):
        calls.append((torch.device(device).type, requested))
        return "bf16"

    train_module = importlib.import_module("magnet_st.training.train")  # the package's `train` is the function
    monkeypatch.setattr(train_module, "training_precision", choose)
    config = TrainConfig(data=str(data), output_dir=str(tmp_path / "o"), base=tiny_decoder_dir, batch_size=4)
    trainer = build_trainer(config)
    assert calls == [("cpu", "auto")] and trainer.args.bf16 and not trainer.args.dataloader_pin_memory
    monkeypatch.undo()
    config = TrainConfig(
        data=str(data), output_dir=str(tmp_path / "p"), base=tiny_decoder_dir, batch_size=4, precision="fp32"
    )
    assert not build_trainer(config).args.bf16
