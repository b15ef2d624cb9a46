"""Encode throughput and quality, side by side in one run.

Part "plain": magnet_st against plain sentence-transformers' `Transformer`. Same base model, same
sentences (STS-B test), same batch size, same pooling and prompt. The plain pipeline is the built-in
`Transformer` + `Pooling` over the same weights: over the base checkpoint it runs causal attention,
over a saved MAGNET folder bidirectional, so each is paired with the matching magnet_st mode.

Part "backends": torch fp32, ONNX fp32, ONNX int8 (the per-token file `export_onnx` writes) and, for
comparison, onnxruntime's dynamic int8 (one scale per activation tensor) and, where `openvino` and `nncf`
are installed, OpenVINO fp32 and OpenVINO int8 (nncf's int8 weights, activations quantized per token group
at run time: `DYNAMIC_QUANTIZATION_GROUP_SIZE`; not shipped, measured for the comparison) on the same saved model
(default: the trained magnet-smollm2-135m): sentences/s and the ratio to torch fp32, STS-B test Spearman
of each, per-sentence cosine of each int8 file to ONNX fp32 (mean, min, 1st percentile) and the difference
of ONNX fp32 to torch, absolute and relative to each vector's largest value. Speeds are timed at each of
`--threads` thread counts.

Rounds alternate between the compared pipelines to share any machine noise.

    python benchmarks/encode.py [--part plain|backends|all] [--model smollm2-135m]
        [--backends-model magnet-smollm2-135m] [--sentences 256]
        [--batch-size 32] [--rounds 3] [--threads 1 2] [--sts-pairs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer

from magnet_st import load_model
from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import read_stsb
from magnet_st.precision import describe_cpu


def throughput(encode, sentences: list[str], rounds: int) -> float:
    encode(sentences[:32])  # warm-up
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        encode(sentences)
        times.append(time.perf_counter() - began)
    return len(sentences) / statistics.median(times)


def compare_plain(args: argparse.Namespace, sentences: list[str]) -> None:
    magnet = load_model(args.model)
    magnet.eval()
    with tempfile.TemporaryDirectory() as folder:
        magnet.save(folder)  # bidirectional checkpoint, built-in modules only
        plain_bidirectional = SentenceTransformer(folder)
        # The same weights with the checkpoint's default (causal) attention, as plain users of the base get.
        plain_causal = SentenceTransformer(folder)
        plain_causal[0].model.config.is_causal = True
        options = dict(batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=False)

        results = {}
        for name, plain, mode in (
            ("bidirectional", plain_bidirectional, "bidirectional"),
            ("causal", plain_causal, "causal"),
        ):
            ours, theirs = [], []

            def encode_ours(texts, mode=mode):
                return magnet.encode(texts, attention_mode=mode, **options)

            def encode_plain(texts, plain=plain):
                return plain.encode(texts, **options)

            for _ in range(args.rounds):  # alternate, one round each
                ours.append(throughput(encode_ours, sentences, 1))
                theirs.append(throughput(encode_plain, sentences, 1))
            results[name] = (statistics.median(ours), statistics.median(theirs))
            check = (
                (
                    magnet.encode(sentences[:8], attention_mode=mode, convert_to_tensor=True)
                    - plain.encode(sentences[:8], convert_to_tensor=True)
                )
                .abs()
                .max()
            )
            results[name] += (float(check),)

    print(f"model={args.model} sentences={len(sentences)} batch_size={args.batch_size} threads={args.threads}")
    print(f"{'attention':<14} {'magnet_st s/s':>14} {'plain ST s/s':>14} {'ratio':>7} {'max |diff|':>11}")
    for name, (ours, theirs, diff) in results.items():
        print(f"{name:<14} {ours:>14.1f} {theirs:>14.1f} {ours / theirs:>7.3f} {diff:>11.2e}")
    print("ratio = magnet_st throughput / plain sentence-transformers throughput (1.0 = same speed)")


DYNAMIC_FILE = "onnx/model_dynamic_int8.onnx"


def write_dynamic_int8(folder: str) -> None:
    """onnxruntime's dynamic int8 of the exported fp32 file, as `export_onnx` wrote it before per-token int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        f"{folder}/onnx/model.onnx", f"{folder}/{DYNAMIC_FILE}", weight_type=QuantType.QInt8, per_channel=True
    )


def backend_models(folder: str, threads: int) -> dict:
    """torch fp32, ONNX fp32 and both ONNX int8 files over one exported folder, each limited to `threads` threads."""
    import onnxruntime

    from magnet_st.backends import quantized_file_name

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    models = {"torch fp32": load_model(folder, device="cpu")}
    files = (("onnx fp32", "onnx/model.onnx"), ("onnx int8", quantized_file_name()), ("dynamic int8", DYNAMIC_FILE))
    for name, file_name in files:
        kwargs = {"file_name": file_name, "session_options": options}
        models[name] = load_model(folder, backend="onnx", model_kwargs=kwargs)
    return models


class OpenVinoSession:
    """An OpenVINO compiled model behind onnxruntime's `run(output_names, feeds)`, so OnnxDecoder can run it."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, output_names, feeds):
        return [np.array(self.request.infer(feeds)[self.compiled.output(0)])]


def add_openvino(models: dict, folder: str, threads: int) -> None:
    """OpenVINO fp32 and int8-weight / dynamic-int8-activation models of the exported fp32 file, if installed."""
    try:
        import nncf
        import openvino
    except ImportError:
        print("openvino / nncf not installed: OpenVINO rows skipped")
        return
    fp32 = openvino.convert_model(f"{folder}/onnx/model.onnx")
    # A second conversion: compress_weights rewrites the graph it is given in place.
    int8 = nncf.compress_weights(
        openvino.convert_model(f"{folder}/onnx/model.onnx"), mode=nncf.CompressWeightsMode.INT8_SYM
    )
    core = openvino.Core()
    for name, graph, group_size in (("openvino fp32", fp32, 0), ("openvino int8", int8, 64)):
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",  # as torch fp32; bf16 would change the comparison
            "PERFORMANCE_HINT": "LATENCY",
            "DYNAMIC_QUANTIZATION_GROUP_SIZE": group_size,
        }
        model = load_model(folder, backend="onnx")
        model[0].session = OpenVinoSession(core.compile_model(graph, "CPU", config))
        models[name] = model


def cosine_summary(ours: torch.Tensor, reference: torch.Tensor) -> str:
    cosine = torch.nn.functional.cosine_similarity(ours, reference).numpy()
    return f"mean {cosine.mean():.4f} min {cosine.min():.4f} 1st percentile {np.percentile(cosine, 1):.4f}"


def compare_backends(args: argparse.Namespace, sentences: list[str], pairs: dict[str, list]) -> None:
    from magnet_st.backends import export_onnx, quantized_file_name

    options = dict(batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=False)
    speeds: dict[tuple[int, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        load_model(args.backends_model).save(folder)
        began = time.perf_counter()
        export_onnx(folder)
        export_seconds = time.perf_counter() - began
        write_dynamic_int8(folder)
        for threads in args.threads:
            torch.set_num_threads(threads)
            models = backend_models(folder, threads)
            add_openvino(models, folder, threads)
            for _ in range(args.rounds):  # alternate, one round each
                for name, model in models.items():
                    speed = throughput(lambda texts, m=model: m.encode(texts, **options), sentences, 1)
                    speeds.setdefault((threads, name), []).append(speed)
        unique = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
        index = {text: row for row, text in enumerate(unique)}
        vectors = {name: model.encode(unique, **options) for name, model in models.items()}

    gold = np.array(pairs["score"])
    print(f"model={args.backends_model} sentences={len(sentences)} batch_size={args.batch_size} threads={args.threads}")
    print(describe_cpu())
    print(f"export (fp32 + int8) took {export_seconds:.0f} s; int8 file: {quantized_file_name()}")
    print(f"STS-B test: {len(gold)} pairs, {len(unique)} sentences")
    print(f"{'backend':<14} {'threads':>7} {'sentences/s':>12} {'ratio':>7}")
    for (threads, name), values in speeds.items():
        speed = statistics.median(values)
        base = statistics.median(speeds[threads, "torch fp32"])
        print(f"{name:<14} {threads:>7} {speed:>12.1f} {speed / base:>7.2f}")
    for name, vector in vectors.items():
        left = vector[[index[text] for text in pairs["sentence1"]]]
        right = vector[[index[text] for text in pairs["sentence2"]]]
        cosine = torch.nn.functional.cosine_similarity(left, right).numpy()
        print(f"{name:<14} STS-B test Spearman {100 * spearmanr(cosine, gold).statistic:.2f}")
    for name in [name for name in vectors if "int8" in name]:
        print(f"{name} vs onnx fp32 per-sentence cosine: {cosine_summary(vectors[name], vectors['onnx fp32'])}")
    difference = (vectors["onnx fp32"] - vectors["torch fp32"]).abs().max(dim=1).values
    scale = vectors["torch fp32"].abs().max(dim=1).values
    print(
        f"onnx fp32 vs torch: max |diff| {difference.max():.2e}, largest |value| {scale.max():.1f}, "
        f"max |diff| / the vector's largest |value| {(difference / scale).max():.2e}"
    )
    print("ratio = sentences/s / torch fp32 sentences/s at the same thread count")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="all", choices=["plain", "backends", "all"])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--backends-model", default="magnet-smollm2-135m", help="model of the backends part")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time")
    parser.add_argument("--sts-pairs", type=int, default=None, help="STS-B test pairs for quality (default all)")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(args.threads))

    rows = read_stsb(dataset_file(args.data, "stsbenchmark", "sts-test.csv"))
    sentences = (rows["sentence1"] + rows["sentence2"])[: args.sentences]
    if args.part in ("plain", "all"):
        compare_plain(args, sentences)
    if args.part in ("backends", "all"):
        pairs = {column: values[: args.sts_pairs] for column, values in rows.items()}
        compare_backends(args, sentences, pairs)


if __name__ == "__main__":
    main()
