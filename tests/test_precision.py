"""Training precision follows the hardware: bf16 only where it is native and measured faster, or what the user asks."""

import importlib
import json
import time
from dataclasses import replace

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
        precision.cpu_bf16_pays.cache_clear()

    yield set_cpu
    precision.cpu_bf16_pays.cache_clear()  # later tests measure the real CPU again


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
def test_native_bf16_is_detected_at_run_time(cpu, capability, cpuinfo, expected, caplog, monkeypatch):
    cpu(capability, cpuinfo)
    timed = []
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: timed.append(1) or 0.8)
    assert cpu_has_native_bf16() is (expected == "bf16")
    # bf16 autocast measured slower than fp32 here: auto trains in fp32, native bf16 or not
    assert training_precision("cpu") == training_precision(torch.device("cpu"), "auto") == "fp32"
    assert len(timed) == (expected == "bf16")  # timed once where native (the choice is cached), never where emulated
    with caplog.at_level("WARNING", logger="magnet_st.precision"):
        assert training_precision("cpu", "bf16") == "bf16"
    assert ("no native bf16" in caplog.text) is (expected == "fp32")


@pytest.mark.parametrize("speedup, expected", [(1.9, "bf16"), (1.31, "bf16"), (1.29, "fp32"), (0.7, "fp32")])
def test_auto_trains_a_native_bf16_cpu_in_bf16_where_autocast_measured_faster(cpu, monkeypatch, speedup, expected):
    cpu("AVX512", CPUINFO_SAPPHIRE_RAPIDS)
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: speedup)
    assert training_precision("cpu") == expected
    cpu("AVX2", CPUINFO_AVX2)  # emulated bf16 is never chosen, whatever a timing says
    assert training_precision("cpu") == "fp32"


def test_the_bf16_timing_compares_the_two_precisions_and_leaves_the_random_state_alone(monkeypatch):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    speedup = precision.cpu_bf16_speedup(tokens=64, hidden=32, inner=64, repeats=1)
    assert speedup > 0 and torch.equal(torch.get_rng_state(), state)
    # The ratio is fp32 time over bf16 time: a bf16 pass made slower shows as a lower ratio.
    real_autocast = torch.autocast

    class SlowBf16(real_autocast):
        def __enter__(self):
            if self._enabled:
                time.sleep(0.3)  # far above a tiny fp32 pass, even on a busy machine
            return super().__enter__()

    monkeypatch.setattr(torch, "autocast", SlowBf16)
    assert precision.cpu_bf16_speedup(tokens=64, hidden=32, inner=64, repeats=2) < 0.5


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


def test_a_resumed_auto_run_keeps_the_precision_it_began_with(monkeypatch, tmp_path, caplog):
    train_module = importlib.import_module("magnet_st.training.train")
    config = TrainConfig(data="texts.txt", output_dir=str(tmp_path / "run"))
    monkeypatch.setattr(train_module, "training_precision", lambda device, requested: "bf16")
    assert train_module.run_precision(config, torch.device("cpu")) == "bf16"
    record = tmp_path / "run-checkpoints" / "precision.json"
    assert json.loads(record.read_text()) == {"precision": "bf16", "requested": "auto"}

    def no_new_choice(device, requested):
        raise AssertionError("a resumed auto run must not choose again")

    monkeypatch.setattr(train_module, "training_precision", no_new_choice)
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: True)
    resumed = replace(config, resume=True)
    assert train_module.run_precision(resumed, torch.device("cpu")) == "bf16"  # a busier or other CPU: kept
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="magnet_st.training.train"):
        assert train_module.run_precision(resumed, torch.device("cpu")) == "fp32"  # never emulated bf16
    assert "began in bf16" in caplog.text
    assert json.loads(record.read_text())["precision"] == "fp32"
    monkeypatch.setattr(train_module, "training_precision", lambda device, requested: requested)
    assert train_module.run_precision(replace(resumed, precision="bf16"), torch.device("cpu")) == "bf16"  # asked
    record.write_text('{"precis')  # cut short: the resumed run chooses again instead of failing
    monkeypatch.setattr(train_module, "training_precision", lambda device, requested: "fp32")
    assert train_module.run_precision(resumed, torch.device("cpu")) == "fp32"
    assert json.loads(record.read_text())["precision"] == "fp32"
    record.write_text(json.dumps({"precision": "bf16", "requested": "auto"}))
    assert train_module.run_precision(config, torch.device("cpu")) == "fp32"  # a new run chooses afresh
