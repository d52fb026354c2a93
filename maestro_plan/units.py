"""Units shared by every package (one definition each)."""

GIB = 2**30  # bytes per GiB (binary gibibyte: what nvidia-smi, vLLM and Kubernetes "Gi" count)
