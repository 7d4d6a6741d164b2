"""PyTorch adapter."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from graphmint.models.frameworks import Framework, flatten_outputs, widen

__all__ = [
    "TorchFramework",
    "adopt",
    "bind_inputs",
    "call_bound",
    "flatten_torch_outputs",
    "flatten_torch_tensors",
    "to_torch",
]


def to_torch(feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import torch

    return [torch.from_numpy(np.require(v, requirements=["C", "W"])) for v in feeds.values()]


def flatten_torch_tensors(out: Any) -> dict[str, Any]:
    """The model's output tensors, named as `flatten_outputs` names them (ModelOutput is a dict)."""
    import torch

    return flatten_outputs(out, lambda t: isinstance(t, torch.Tensor), lambda t: t)


def adopt(wrapper: Any, model: Any) -> None:
    """Make `wrapper` (a fresh nn.Module) hold `model`'s submodules, parameters and buffers under their
    own names, not under a prefix: an exported wrapper's state dict and initializers, and the module
    paths its graph records, are then the model's own."""
    wrapper._modules = model._modules
    wrapper._parameters = model._parameters
    wrapper._buffers = model._buffers


def flatten_torch_tensors_or_none(out: Any) -> list[Any]:
    """The tensors in a module's output, [] where it holds something else too (a cache object)."""
    try:
        return list(flatten_torch_tensors(out).values())
    except TypeError:
        return []


def flatten_torch_outputs(out: Any) -> dict[str, np.ndarray]:
    """The model's output tensors as numpy arrays, named as `flatten_outputs` names them."""
    return {name: t.detach().cpu().numpy() for name, t in flatten_torch_tensors(out).items()}


def bind_inputs(model: Any, names: Sequence[str]) -> tuple[str, ...]:
    """The inputs that go to `model.forward` by keyword; the others go positionally, in order.

    When every input name is a parameter of `forward` (input_ids, attention_mask, pixel_values, ...),
    all of them are passed by name, so a forward with more parameters than the spec names (such as
    `use_cache` after `attention_mask`) gets each input where it belongs. Otherwise, or for a
    `forward(*args)`, inputs are passed positionally in the order they are declared.
    """
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # a builtin or scripted forward has no Python signature
        return ()
    named = {
        n
        for n, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return tuple(names) if names and set(names) <= named else ()


def call_bound(
    model: Callable[..., Any], keywords: Sequence[str], names: Sequence[str], args: Sequence[Any]
) -> Any:
    """Call `model` on `args` (one per input in `names`), the `keywords` ones by name."""
    positional = [a for n, a in zip(names, args, strict=True) if n not in keywords]
    named = {n: a for n, a in zip(names, args, strict=True) if n in keywords}
    return model(*positional, **named)


class TorchFramework(Framework):
    name = "torch"

    def owns(self, obj: Any) -> bool:
        import torch

        return isinstance(obj, torch.nn.Module)

    @contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def prepare(self, model: Any) -> Any:
        return model.eval()

    def run_eager(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        names = list(feeds)
        with torch.inference_mode():
            return flatten_torch_outputs(call_bound(model, bind_inputs(model, names), names, to_torch(feeds)))

    def weights(self, model: Any) -> dict[str, np.ndarray]:
        return {name: t.detach().cpu().numpy() for name, t in model.state_dict(keep_vars=False).items()}

    def load_weights(self, model: Any, path: Path, trust: bool) -> None:
        from graphmint.models.frameworks.weights import load_torch_weights

        load_torch_weights(model, path, trust)

    def float64_copy(self, model: Any) -> Any:
        import copy

        import torch

        return copy.deepcopy(model).to(torch.float64)

    def run_float64(self, model: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """With float64 as torch's default dtype, so that tensors the forward makes match the weights."""
        import torch

        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return self.run_eager(model, widen(feeds))
        finally:
            torch.set_default_dtype(default)

    def probe(self, model: Any, input_names: Sequence[str]) -> tuple[Any, list[tuple[str, str]]]:
        """The model behind forward hooks on every submodule: the probe returns the flat outputs, then
        each submodule's first output tensor at its last call (an empty tensor where it made none), so
        a traced or exported probe lines up with the eager one whatever path each took."""
        import torch

        layers = [(path, type(module).__name__) for path, module in model.named_modules() if path]
        paths = [path for path, _ in layers]
        if not paths:
            raise ValueError(f"a {type(model).__name__} has no submodules to compare one by one")
        captured: dict[str, Any] = {}
        keywords = bind_inputs(model, input_names)

        def hook(path: str) -> Callable[..., None]:
            def record(module: Any, args: Any, output: Any) -> None:
                tensors = [t for t in flatten_torch_tensors_or_none(output) if t.is_floating_point()]
                if tensors:
                    captured.pop(path, None)  # in the order of each module's last call
                    captured[path] = tensors[0]

            return record

        handles = [module.register_forward_hook(hook(path)) for path, module in model.named_modules() if path]

        class Probe(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                adopt(self, model)

            def forward(self, *args: Any) -> tuple[Any, ...]:
                captured.clear()
                outputs = tuple(
                    flatten_torch_tensors(call_bound(model, keywords, input_names, args)).values()
                )
                empty = args[0].new_zeros((0,), dtype=torch.float32)
                return (*outputs, *(captured.get(p, empty) for p in paths))

        # Any: a Module given two plain attributes, not declared on the class (TorchScript reads a
        # module's class annotations as its attributes' types when a route traces the probe)
        probe: Any = Probe().eval()
        probe.fired = captured  # after an eager call: the modules that ran, in the order they finished
        probe.release = lambda: [handle.remove() for handle in handles]  # the model as it was
        return probe, layers
