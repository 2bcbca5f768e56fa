"""Small shared pieces of the user-facing jobs: device choice, method loading, run facts."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

from progface import plugins
from progface.weights import WeightsError, resolve, sha256_of


def pick_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA GPU is available")
    return name


PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # also the CLI's --precision choices


def pick_precision(precision: str, device: str) -> str:
    """``auto`` -> the fastest inference path measured to keep val PSNR within 0.05 dB of fp32
    (ours, bf16 autocast: -0.0012 dB, 3.5x on a CPU with bf16; ``benchmarks/README.md``):
    bf16 where the device computes it natively, else fp32. fp16 is for CUDA only."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device != "cuda":
        raise ValueError("--precision fp16 runs on CUDA only; use bf16 or fp32 on a CPU")
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if native else "fp32"


def optimized(model: Any, precision: str, name: str, compile: bool = False) -> tuple[Any, str]:
    """``model`` folded for inference at ``precision`` (``optimize_for_inference``; ``compile``:
    through ``torch.compile``, which falls back to eager with a warning where it cannot run), or
    as it is when it has no parameters or cannot be folded (a plugin's network: warned, never
    fatal). Returns the model and the path that runs ("eager fp32" when unchanged)."""
    import torch

    if not isinstance(model, torch.nn.Module) or not any(True for _ in model.parameters()):
        return model, "no network"
    from progface.models.inference import optimize_for_inference

    try:
        folded = optimize_for_inference(model, precision=precision, compile=compile)
        return folded, f"folded {precision}" + (", compiled" if compile else "")
    except Exception as err:  # noqa: BLE001 (any plugin module; the eager model still works)
        import sys

        print(f"progface: method {name!r} runs unoptimised in eager fp32 ({err})", file=sys.stderr)
        return model, "eager fp32"


def method_spec(name: str):
    """The method ``name``: a registered MethodSpec, else one derived from the registered
    generator ``name`` (its build + the weights a ``progface train`` run exported for it; see
    :func:`generator_method`). An unknown name gets the methods registry's error."""
    methods = plugins.registries()["methods"]
    if name not in methods and name in plugins.registries()["generators"]:
        return generator_method(plugins.get("generators", name))
    return methods.get(name)


def generator_method(spec):
    """The MethodSpec of a generator without a method of its own: it runs the weights given
    with ``--weights NAME=PATH`` (there are no default weights)."""
    from progface.registry import MethodSpec

    def load(weights=None, device="cpu"):
        from progface.models.runner import load_generator_method

        return load_generator_method(spec.name, weights, device)

    return MethodSpec(
        name=spec.name, load=load, generator=spec.name, plugin=spec.plugin,
        description=f"generator {spec.name!r} with weights from `progface train` ({spec.description})",
    )  # fmt: skip


# also the CLI's --runtime choices; torch-compile pays 5-10 s of compilation once per process
# (and per new batch shape) for 1.15-1.25x the throughput of eager (benchmarks/results): 300
# faces took 16.4 s compiled against 9.5 s eager on the 2-core CPU
RUNTIMES = ("torch", "torch-compile", "onnxruntime")


def load_method(
    name: str,
    device: str,
    weights: str | Path | None = None,
    precision: str | None = None,
    runtime: str = "torch",
):
    """Load a method (registered, or derived from a generator: :func:`method_spec`); returns
    ``(callable, facts)`` where facts name the weights.

    ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) folds a network for inference at that
    precision (``facts["precision"]`` says what runs); None leaves the method as it loads.
    ``runtime="torch-compile"`` runs the folded network (at ``precision``, fp32 if None) through
    ``torch.compile``; ``runtime="onnxruntime"`` runs the network's ONNX export (made once, kept
    in the weights cache under ``onnx/``) in onnxruntime, in fp32 (extra ``progface[onnx]``)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    spec = method_spec(name)
    check_takes_weights(spec, weights)
    facts: dict[str, Any] = {"method": spec.name, "plugin": spec.plugin, "weights": None}
    path = None
    if weights is not None or spec.weights is not None:
        path = Path(weights) if weights is not None else resolve(spec.weights)
        if not path.is_file():
            raise WeightsError(f"{path}: no such weight file (for method {name!r})")
        facts["weights"] = {"path": str(path), "sha256": sha256_of(path)}
    model = spec.load(weights=path, device=device)
    if runtime == "onnxruntime":
        model, facts["onnx"] = _onnx_runner(model, spec.name, facts, device)
        facts["precision"] = "fp32"
    elif precision is not None or runtime == "torch-compile":
        chosen = pick_precision(precision or "fp32", device)
        model, facts["precision"] = optimized(model, chosen, name, runtime == "torch-compile")
    if runtime != "torch":
        facts["runtime"] = runtime
    return model, facts


def _onnx_runner(model: Any, name: str, facts: dict[str, Any], device: str):
    """``model`` exported to ONNX (once per method and weights) and run by onnxruntime."""
    import torch

    from progface.jobs.export import ONNX_MISSING, export_onnx
    from progface.weights import cache_dir

    try:
        import onnxruntime
    except ImportError:
        raise ImportError(ONNX_MISSING.replace("ONNX export", "--runtime onnxruntime")) from None
    if not isinstance(model, torch.nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError(f"method {name!r} has no network for onnxruntime (a fixed resize)")
    wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    if wanted not in onnxruntime.get_available_providers():
        raise RuntimeError(f"onnxruntime has no {wanted} here (device {device!r})")
    key = (facts["weights"] or {}).get("sha256", "none")[:16]
    path = cache_dir() / "onnx" / f"{name}-{key}.onnx"
    if not path.is_file():
        export_onnx(model, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=[wanted])

    def run(lr: torch.Tensor) -> torch.Tensor:
        (sr,) = session.run(None, {"lr": lr.detach().float().cpu().numpy()})
        return torch.from_numpy(sr).to(lr.device)

    return run, str(path)


def check_takes_weights(spec, weights: str | Path | None, option: str = "--weights") -> None:
    """A weight file given for a method without weights (``MethodSpec.weights`` None and no
    ``generator``) would be recorded in results as if used: refuse it."""
    if weights is not None and spec.weights is None and spec.generator is None:
        raise WeightsError(
            f"{option}: method {spec.name!r} takes no weights (given {weights}); leave it out"
        )


def run_facts(device: str) -> dict[str, Any]:
    """Versions, machine and date for results files."""
    import torch

    import progface

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "progface": progface.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": device,
    }
