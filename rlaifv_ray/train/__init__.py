"""DPO training: `dpo` (TRL, no Ray) and `launch` (Ray Train)."""
