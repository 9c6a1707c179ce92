"""Reading and writing rnnfast's files: checkpoints (io.checkpoint)."""
