"""Torch module names -> each backend's layer names, for the layers a quantization keeps in float.

Users and the fallback search name layers once, by the torch module FQN of the export wrapper
(``model.down_blocks.0.attentions.0.proj_in``), since that is what they see in the model and what
sensitivities are measured on. Each backend names the same layer its own way (ONNX node names,
OpenVINO op friendly names); the exporters translate here with the maps ``ort_qdq.onnx_layers`` and
``nncf_openvino.openvino_layers`` give. A module name also selects every layer inside it, so
``model.mid_block`` keeps the whole middle block in float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgediff.errors import EdgeDiffError


def backend_names(modules: Sequence[str], layers: Mapping[str, Sequence[str]], backend: str) -> list[str]:
    """The backend's names of every weighted layer in ``modules``; an unknown module is an error."""
    names: list[str] = []
    for module in modules:
        found = [n for fqn, ns in layers.items() if fqn == module or fqn.startswith(module + ".") for n in ns]
        if not found:
            examples = ", ".join(sorted(layers)[:3])
            raise EdgeDiffError(
                f"module {module!r} to keep in float has no weighted layer in the {backend} graph; "
                f"name torch modules of the export wrapper (e.g. {examples})"
            )
        names.extend(n for n in found if n not in names)
    return names
