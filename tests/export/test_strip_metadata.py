"""The metadata strip keeps external weights usable: large (>2 GB) bundles keep their .data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_stripping_an_external_data_model_keeps_it_runnable(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgediff.export.passes.strip_metadata import strip_node_metadata

    weight = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 1000
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    node.metadata_props.add(key="pkg.torch.onnx.stack_trace", value='File "/home/someone/model.py", line 1')
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              initializer=[numpy_helper.from_array(weight, "w")])
    path = tmp_path / "model.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path),
                    save_as_external_data=True, location="model.onnx.data", size_threshold=0)

    assert strip_node_metadata(path) == 1
    assert b"stack_trace" not in path.read_bytes() and (tmp_path / "model.onnx.data").is_file()
    x = np.ones((1, 64), np.float32)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, x @ weight, rtol=1e-6)
    assert strip_node_metadata(path) == 0  # nothing left to strip: the file is not rewritten
