"""Checks a PEFT LoRA adapter against its base model with Python's `safetensors`.

usage: check_adapter.py ADAPTER_DIR BASE_MODEL_DIR

Every `base_model.model.<module>.lora_A.weight` must be [r, in] and every `.lora_B.weight`
[out, r] for the base weight `<module>.weight` of shape [out, in]; `r` and the target modules
must match adapter_config.json. Exits non-zero with a message on the first mismatch.
"""

import json
import sys
from pathlib import Path

from safetensors.numpy import load_file


def main() -> int:
    adapter_dir, base_dir = Path(sys.argv[1]), Path(sys.argv[2])
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA", config
    assert config["task_type"] == "CAUSAL_LM", config
    assert config["bias"] == "none", config
    r = config["r"]
    targets = set(config["target_modules"])
    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    base = {}
    for f in sorted(base_dir.glob("*.safetensors")):
        base.update(load_file(f))
    seen = set()
    for name, tensor in adapter.items():
        prefix = "base_model.model."
        assert name.startswith(prefix), name
        module, kind = name[len(prefix):].rsplit(".", 2)[0], name.rsplit(".", 2)[1]
        assert module.rsplit(".", 1)[1] in targets, name
        out_features, in_features = base[module + ".weight"].shape
        expected = (r, in_features) if kind == "lora_A" else (out_features, r)
        assert kind in ("lora_A", "lora_B"), name
        assert tuple(tensor.shape) == expected, (name, tensor.shape, expected)
        assert str(tensor.dtype) == "float32", (name, tensor.dtype)
        seen.add((module, kind))
    modules = {m for m, _ in seen}
    assert all((m, k) in seen for m in modules for k in ("lora_A", "lora_B")), "unpaired A/B"
    expected_modules = {
        n[: -len(".weight")]
        for n in base
        if n.endswith(".weight") and n[: -len(".weight")].rsplit(".", 1)[-1] in targets
    }
    assert modules == expected_modules, (sorted(expected_modules - modules), sorted(modules - expected_modules))
    print(f"adapter ok: {len(adapter)} tensors, r={r}, {len(modules)} modules")
    print("peft/transformers not installed (too heavy for CI): loading with PeftModel skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
