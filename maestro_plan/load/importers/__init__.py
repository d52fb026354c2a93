"""Importers: files users already have -> maestro-plan inputs, one module per format.

    nvidia_smi.py   `nvidia-smi --query-gpu=... --format=csv` -> Inventory
    kubectl.py      `kubectl get nodes -o json` -> Inventory
    common.py       what the inventory importers share (GPU type matching, node pools, YAML)
    hf_config.py    Hugging Face config.json -> Architecture, weight precision, quantization
    hf_model.py     config.json -> a catalogue ModelSpec and its models/<id>.yaml text
"""
