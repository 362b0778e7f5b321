"""Where does my model first leave the reference? Hooks on both models, compared sub-step by sub-step.

A parity test says *that* the logits differ; :func:`first_divergence` says *where*. It runs both
models on the same tokens, hooked, and walks the sub-steps in the order the forward pass computes
them: the embedding, each block's sub-steps, the final norm and the head. The first sub-step whose
output differs beyond ``atol + rtol * |reference|`` is where the two computations part; everything
after it inherits the difference.

The plan: the blocks are the shallowest ``nn.ModuleList`` both models have under one name
(``model.layers``); the embedding and final norm are its siblings, the head is ``lm_head``. Each of
*our* blocks says what it computes: ``block.substeps()`` lists its
:class:`demos.models.decoder.SubStep` s (norms, attention or mixer, MLP, residuals) in forward
order, each the output of a named child, hooked in both models under that name (transformers'
names). Nothing is guessed from names and nothing is skipped: a block without ``substeps()``, or a
child either side lacks, is a ``ValueError``. Residual sums are not modules: the block's own output
is its last residual, and a residual inside it (``adds="self_attn"``) is rebuilt on both sides as
the block's input plus that child's output: what the sum holds when the block adds them. A wrong
*input* to a module therefore shows at that module's output: a block that forgets ``x +`` before its
post-attention norm, or feeds that norm the wrong tensor, is reported at the post-attention norm,
the first output computed from the wrong value; read what that line is given.

Axes of the hooked outputs: ``b`` batch, ``t`` position, then ``c`` hidden size (``v`` vocabulary for
the head).

Reference implementation: transformers==5.23.0, models/llama/modeling_llama.py::LlamaDecoderLayer
and the other families' decoder layers (their children are hooked by our blocks' names).

Over ~300 lines on purpose: one routine, :func:`first_divergence`, with the hooks and the sub-step
walk it needs; split, the walk's order and the hooks that feed it would sit apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from demos.validation import check_finite_number, check_token_ids


@dataclass(frozen=True)
class Divergence:
    """The first sub-step whose output differs beyond tolerance.

    ``layer`` is the block's index, or ``None`` for the embedding, the final norm and the head.
    ``where`` indexes the largest difference in the output ``(b, t, ...)`` (empty when the shapes
    differ or a side never ran the module); ``tolerance`` is ``atol + rtol * |reference|`` there.
    ``compared`` counts the sub-steps compared, this one included; ``note`` says why a
    difference has no size (NaN, shapes, a module that did not run).
    """

    layer: int | None
    substep: str
    ours_module: str
    reference_module: str
    max_abs_diff: float
    where: tuple[int, ...]
    tolerance: float
    atol: float
    rtol: float
    compared: int
    note: str = ""

    def __str__(self) -> str:
        place = "" if self.layer is None else f"layer {self.layer}, "
        modules = (
            f"module {self.ours_module} in both"
            if self.ours_module == self.reference_module
            else f"ours: {self.ours_module}, reference: {self.reference_module}"
        )
        head = (
            f"First divergence at {place}{self.substep} "
            f"(sub-step {self.compared} in forward order; {modules})"
        )
        if self.note:
            return f"{head}: {self.note}."
        token = f", token position {self.where[1]}" if len(self.where) > 1 else ""
        return (
            f"{head}: max |ours - reference| = {self.max_abs_diff:.3g} at index "
            f"{self.where}{token}; the tolerance there is {self.tolerance:.3g} "
            f"(atol {self.atol:g} + rtol {self.rtol:g} x |reference|)."
        )


@dataclass(frozen=True)
class NoDivergence:
    """Every one of ``compared`` sub-steps agreed; ``max_abs_diff`` is the largest difference seen."""

    compared: int
    max_abs_diff: float
    atol: float
    rtol: float

    def __str__(self) -> str:
        return (
            f"No divergence: all {self.compared} sub-steps agree within atol {self.atol:g} + "
            f"rtol {self.rtol:g} x |reference| (largest difference {self.max_abs_diff:.3g})."
        )


@dataclass(frozen=True)
class _Step:
    layer: int | None
    substep: str
    module: str  # the hooked module's name, the same in both models
    block_input: str | None = None  # for a rebuilt residual: the block whose input is added

    @property
    def name(self) -> str:
        """The module's name, or ``"<block> input + <child>"`` for a rebuilt residual."""
        return (
            self.module if self.block_input is None else f"{self.block_input} input + {self.module}"
        )


def _first_tensor(output: Any) -> torch.Tensor | None:
    """A module's output tensor: transformers' attention returns ``(output, weights)``."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


class _Recorder:
    """Forward hooks that keep a copy of the first output (and block input) of named modules."""

    def __init__(self, model: nn.Module, names: set[str], inputs_of: set[str]) -> None:
        self.outputs: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        self.handles = [modules[n].register_forward_hook(self._keep(n)) for n in names]
        self.handles += [
            modules[n].register_forward_pre_hook(self._keep_input(n), with_kwargs=True)
            for n in inputs_of
        ]

    def _keep(self, name: str):
        def hook(module, args, output):
            out = _first_tensor(output)
            if out is not None and name not in self.outputs:  # a copy: HF adds in place later
                self.outputs[name] = out.detach().clone()

        return hook

    def _keep_input(self, name: str):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs.get("hidden_states")
            if isinstance(x, torch.Tensor) and name not in self.inputs:
                self.inputs[name] = x.detach().clone()

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _plan(ours: nn.Module, reference: nn.Module) -> list[_Step]:
    """The sub-steps to compare, in forward order; ``ValueError`` if no block list matches, the
    layer counts differ, or a block's sub-steps cannot be hooked on both sides."""
    mine, theirs = dict(ours.named_modules()), dict(reference.named_modules())
    lists = [n for n, m in mine.items() if isinstance(m, nn.ModuleList) and n in theirs]
    blocks = min(lists, key=lambda n: n.count("."), default=None)  # the shallowest: the blocks
    if blocks is None:
        raise ValueError(
            f"no decoder blocks match: {type(ours).__name__} and {type(reference).__name__} share "
            "no nn.ModuleList name (the models in demos.models use transformers' module names)"
        )
    if len(mine[blocks]) != len(theirs[blocks]):
        raise ValueError(
            f"{blocks} holds {len(mine[blocks])} blocks in ours and {len(theirs[blocks])} in the "
            "reference: the models must have the same number of layers"
        )
    backbone = blocks.rpartition(".")[0]
    prefix = f"{backbone}." if backbone else ""
    shared = [  # the backbone's other children, in ours' order: embedding, then final norm
        n
        for n, _ in (mine[backbone] if backbone else ours).named_children()
        if f"{prefix}{n}" in theirs and f"{prefix}{n}" != blocks
    ]
    embeds = [n for n in shared if isinstance(mine[f"{prefix}{n}"], nn.Embedding)]
    norms = [n for n in shared if n not in embeds]
    steps = [_Step(None, "embedding", f"{prefix}{n}") for n in embeds]
    for i in range(len(mine[blocks])):
        name = f"{blocks}.{i}"
        steps += _block_steps(i, name, mine[name], theirs[name])
    steps += [_Step(None, "final norm", f"{prefix}{n}") for n in norms]
    if "lm_head" in mine and "lm_head" in theirs:
        steps.append(_Step(None, "lm_head", "lm_head"))
    return steps


def _block_steps(i: int, name: str, block: nn.Module, ref_block: nn.Module) -> list[_Step]:
    """Block ``i``'s sub-steps as our ``block`` declares them; ``ValueError`` if it declares none, or
    a child that it or ``ref_block`` lacks: a sub-step is never dropped in silence."""
    ours_class, ref_class = type(block).__name__, type(ref_block).__name__
    declare = getattr(block, "substeps", None)
    if not callable(declare):
        raise ValueError(
            f"{ours_class} (block {i} of ours) must declare its sub-steps: a method substeps() "
            "returning its demos.models.decoder.SubStep's in forward order"
        )
    substeps = tuple(declare())
    if not substeps:
        raise ValueError(f"{ours_class}.substeps() (block {i} of ours) declares no sub-steps")
    owners = {
        f"{ours_class} (block {i} of ours)": dict(block.named_modules()),
        f"the reference's {ref_class} (block {i})": dict(ref_block.named_modules()),
    }
    steps = []
    for sub in substeps:
        child = sub.module if sub.module is not None else sub.adds  # None: the block's output
        for owner, children in owners.items():
            if child is not None and child not in children:
                raise ValueError(
                    f"{ours_class}.substeps() declares the module {child!r} for {sub.name!r}, but "
                    f"{owner} has no such child: a sub-step is hooked under one name in our "
                    f"{ours_class} and the reference's {ref_class} (transformers' names)"
                )
        hooked = name if child is None else f"{name}.{child}"
        steps.append(_Step(i, sub.name, hooked, name if sub.adds is not None else None))
    return steps


def _value(step: _Step, recorder: _Recorder) -> torch.Tensor | None:
    """The step's output on one side: a hooked output, or block input + a child's output."""
    if step.block_input is None:
        return recorder.outputs.get(step.module)
    x, attn = recorder.inputs.get(step.block_input), recorder.outputs.get(step.module)
    return None if x is None or attn is None else x + attn


def _compare(
    step: _Step, a: torch.Tensor | None, b: torch.Tensor | None, atol: float, rtol: float, n: int
) -> tuple[Divergence | None, float]:
    """A :class:`Divergence` if ``a`` (ours) and ``b`` (reference) differ beyond tolerance."""

    def diverged(note: str, diff: float = float("inf")) -> tuple[Divergence, float]:
        fields = (step.layer, step.substep, step.name, step.name, diff, (), float("nan"))
        return Divergence(*fields, atol, rtol, n, note), diff

    if a is None or b is None:
        side = "ours" if a is None else "the reference"
        return diverged(f"{side} never ran it (its forward did not call that module)")
    if a.shape != b.shape:
        return diverged(f"the shapes differ: ours {tuple(a.shape)}, reference {tuple(b.shape)}")
    a, b = a.double(), b.double()
    for side, x in (("ours", a), ("the reference", b)):
        if not torch.isfinite(x).all():
            return diverged(f"{side} holds NaN or inf", float("nan"))
    diff = (a - b).abs()
    where = tuple(int(j) for j in torch.unravel_index(diff.argmax(), diff.shape))
    largest = diff[where].item()
    if (diff <= atol + rtol * b.abs()).all():
        return None, largest
    tolerance = atol + rtol * abs(b[where].item())
    fields = (step.layer, step.substep, step.name, step.name, largest, where, tolerance)
    return Divergence(*fields, atol, rtol, n), largest


def first_divergence(
    ours: nn.Module,
    reference: nn.Module,
    input_ids: torch.Tensor,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Divergence | NoDivergence:
    """Run both models on ``input_ids`` and name the first sub-step whose output differs.

    Args:
        ours: a model whose module names follow transformers' and whose blocks declare their
            sub-steps with ``substeps()`` (every model in :mod:`demos.models`, or a learner's own).
        reference: the transformers ``...ForCausalLM`` it should equal, with the same weights.
        input_ids: ``(b, t)`` integer token ids in ``[0, vocab_size)``.
        atol, rtol: an output agrees where ``|ours - reference| <= atol + rtol * |reference|``
            elementwise (the defaults suit float32; loosen them for bfloat16).

    Returns:
        The first :class:`Divergence`, in forward order, or :class:`NoDivergence` with the number
        of sub-steps compared. ``str()`` of either is a sentence for a reader.

    Raises:
        ValueError: a model is not an ``nn.Module`` with a ``config.vocab_size``, the vocabularies
            differ, ``input_ids`` is not valid for them, ``atol`` or ``rtol`` is negative or not
            finite, no block list matches by name, or one of our blocks has no ``substeps()`` or
            declares a child that it or the reference's block lacks (it would not be compared).

    Both models run as they are, under ``torch.no_grad()``: put them in eval mode first, or dropout
    makes them differ. A module that runs more than once in a forward is compared on its first call.
    """
    vocab = [getattr(getattr(m, "config", None), "vocab_size", None) for m in (ours, reference)]
    for side, model, size in zip(("ours", "reference"), (ours, reference), vocab, strict=True):
        if not isinstance(model, nn.Module) or size is None:
            raise ValueError(
                f"{side} must be an nn.Module with config.vocab_size, got {model!r:.60}"
            )
    if vocab[0] != vocab[1]:
        raise ValueError(
            f"the vocabularies differ: ours has {vocab[0]} tokens, reference {vocab[1]}"
        )
    check_token_ids(input_ids, vocab[0])
    check_finite_number("atol", atol, minimum=0)
    check_finite_number("rtol", rtol, minimum=0)
    steps = _plan(ours, reference)
    names = {s.module for s in steps}
    blocks_in = {s.block_input for s in steps if s.block_input is not None}
    recorders = (_Recorder(ours, names, blocks_in), _Recorder(reference, names, blocks_in))
    try:
        with torch.no_grad():
            ours(input_ids)
            reference(input_ids=input_ids, use_cache=False)
    finally:
        for recorder in recorders:
            recorder.remove()
    largest = 0.0
    for n, step in enumerate(steps, start=1):
        a, b = _value(step, recorders[0]), _value(step, recorders[1])
        found, diff = _compare(step, a, b, atol, rtol, n)
        if found is not None:
            return found
        largest = max(largest, diff)
    return NoDivergence(len(steps), largest, atol, rtol)
