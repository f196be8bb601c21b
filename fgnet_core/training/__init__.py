"""Training: the official FG-Net recipe as a resumable library loop."""
